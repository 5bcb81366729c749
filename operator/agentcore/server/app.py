"""The aiohttp application: ``POST /api/v1/jsonrpc``, ``/healthz``, ``/readyz``, ``/metrics`` (admin only;
unauthenticated on ``settings.metrics_port``).

Built by :func:`create_app` from :class:`Settings`; every outside dependency can be injected
(a KubeRay-style provider), so tests swap the Kubernetes client, the trajectory repository, the
object store, the evaluator, the token verifier or the clock.

HTTP statuses of the JSON-RPC endpoint: 200 for every JSON-RPC response, errors included; 204 when
only notifications were sent; 401 for a missing or invalid token (error -32003); 413 for a body
over ``max_body_bytes`` (error -32600); 429 when the rate limit refused the request (error -32029,
``data.retry_after``, Retry-After header). Every response carries X-RateLimit-Limit / -Remaining /
-Reset (epoch seconds) of the bucket it counted against and an X-Request-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agentcore import logs
from agentcore.auth.tokens import ANONYMOUS, Principal, TokenVerifier
from agentcore.exports.audit import AuditLog
from agentcore.kube import config as kube_config
from agentcore.kube.client import KubeClient
from agentcore.logs import ACCESS_LOGGER
from agentcore.server.auth import authenticate
from agentcore.server.ingest import IngestDeps, add_ingest_routes
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.dispatch import Dispatcher, rate_limited
from agentcore.server.jsonrpc.errors import RpcError
from agentcore.server.jsonrpc.evaluation import Evaluator
from agentcore.server.jsonrpc.jobcache import JobCache, KubeApi
from agentcore.server.jsonrpc.openrpc import discover_method
from agentcore.server.jsonrpc.protocol import dumps, failure
from agentcore.server.jsonrpc.training import TrainingService
from agentcore.server.metrics import CONTENT_TYPE, ApiMetrics
from agentcore.server.ratelimit import DEFAULT_BUCKET, Decision, RateLimiter
from agentcore.server.rest.exports import ExportDeps, add_export_routes, bearer_authenticator
from agentcore.server.settings import Settings
from agentcore.storage.db import database_url, make_engine, session_factory
from agentcore.storage.migrate import upgrade
from agentcore.storage.objectstore import ObjectStore, open_store
from agentcore.storage.trajectories import TrajectoryRepository

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

RPC_PATH = "/api/v1/jsonrpc"
KubeClientFactory = Callable[[], KubeApi]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class ApiState:
    settings: Settings
    metrics: ApiMetrics
    limiter: RateLimiter
    verifier: TokenVerifier | None
    dispatcher: Dispatcher | None = None
    cache: JobCache | None = None
    repo: TrajectoryRepository | None = None


STATE = web.AppKey("agentcore_api_state", ApiState)
REQUEST_ID = web.RequestKey("agentcore_request_id", str)
CALLER = web.RequestKey("agentcore_caller", str)
RPC_METHODS = web.RequestKey("agentcore_rpc_methods", list)


def create_app(
    settings: Settings,
    *,
    kube_client_factory: KubeClientFactory | None = None,
    repo: TrajectoryRepository | None = None,
    object_store: ObjectStore | None = None,
    evaluator: Evaluator | None = None,
    verifier: TokenVerifier | None = None,
    limiter: RateLimiter | None = None,
    clock: Callable[[], float] = time.time,
    freeze_heap: bool = False,
) -> web.Application:
    """The API server application; dependencies are created at startup unless injected.

    - ``kube_client_factory``: default a :class:`KubeClient` for ``settings.kubeconfig`` (or
      $KUBECONFIG, or in-cluster config).
    - ``repo``: default from ``settings.database_url`` (migrated at startup only with
      ``settings.run_migrations``: in a cluster the chart's hook Job migrates).
    - ``object_store``: default ``open_store(settings.object_store)`` when set; without one, datasets
      too large to inline are refused.
    - ``evaluator``: default the trainer's checkpoint evaluation in sandboxed worker processes when
      an object store is configured, else one that answers -40004 "evaluation backend not configured".
    - ``verifier``: default built from the JWT settings; none with ``insecure_disable_auth``.
    - ``limiter``: the one rate limiter of the JSON-RPC and the REST routes; default the
      settings' limits over an in-memory store.
    - ``clock``: time source of the default rate limiter.
    - ``freeze_heap``: gc.freeze() what start-up made once the cache has synced (see
      `_freeze_startup_heap`); for the server's own process (the CLI), never for an app that
      shares its process (tests), whose objects would then never be collected.
    """
    state = ApiState(
        settings=settings,
        metrics=ApiMetrics(),
        limiter=limiter or RateLimiter(settings.rate_limits, clock=clock),
        verifier=verifier or build_verifier(settings),
    )
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_access_middleware])
    app[STATE] = state
    app.router.add_post(RPC_PATH, _handle_rpc)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)

    exports = _mount_exports(app, state)
    ingest = IngestDeps(settings.ingest_options())
    add_ingest_routes(app, ingest)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with (
            _dependencies(
                app[STATE], kube_client_factory, repo, object_store, evaluator, exports, ingest, freeze_heap
            ),
            _metrics_listener(app[STATE]),
            _access_log_flusher(),
        ):
            yield

    app.cleanup_ctx.append(lifecycle)
    return app


def _mount_exports(app: web.Application, state: ApiState) -> ExportDeps:
    """The Exports REST API shares the JSON-RPC server's verifier (same JWT and tenant model) and
    rate limiter (its own buckets in the same store); its clients (Kubernetes, object store,
    database) are filled in at startup."""

    async def anonymous(request: web.Request) -> Principal:
        return ANONYMOUS

    authenticate = bearer_authenticator(state.verifier.verify) if state.verifier else anonymous
    deps = ExportDeps(
        kube=cast(KubeClient, None),
        authenticate=authenticate,
        default_namespace=state.settings.default_namespace or "default",
        limiter=state.limiter,
    )
    add_export_routes(app, deps)
    return deps


def build_verifier(settings: Settings) -> TokenVerifier | None:
    if settings.insecure_disable_auth:
        log.warning(
            "AUTHENTICATION IS DISABLED (--insecure-disable-auth): every caller is an admin of every "
            "namespace. Use this only on a machine nobody else can reach."
        )
        return None
    if not settings.auth_configured:
        raise ValueError(
            "no JWT verification key: set AGENTCORE_JWT_SECRET (or --jwt-secret-file), "
            "--jwt-public-key-file or --jwks-file; --insecure-disable-auth turns authentication off"
        )
    return TokenVerifier.from_files(
        hs256_secret=settings.jwt_secret,
        public_key_file=settings.jwt_public_key_file,
        jwks_file=settings.jwks_file,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


@contextlib.asynccontextmanager
async def _dependencies(
    state: ApiState,
    kube_client_factory: KubeClientFactory | None,
    repo: TrajectoryRepository | None,
    store: ObjectStore | None,
    evaluator: Evaluator | None,
    exports: ExportDeps,
    ingest: IngestDeps,
    freeze_heap: bool,
) -> AsyncIterator[None]:
    settings = state.settings
    if kube_client_factory is not None:
        kube = kube_client_factory()
    else:
        kube = KubeClient(await asyncio.to_thread(kube_config.load, settings.kubeconfig))
    engine = None
    if repo is None:
        engine = make_engine(database_url(settings.database_url))
        if settings.run_migrations:
            await upgrade(engine)
        cap = settings.max_trajectories_per_namespace or None
        repo = TrajectoryRepository(session_factory(engine), max_per_namespace=cap)
    _share_rate_limits(state, engine)
    if store is None and settings.object_store:
        store = await asyncio.to_thread(open_store, settings.object_store)
    owned_evaluator = None
    if evaluator is None and store is not None:
        # Checkpoints live in the object store: evaluate them in sandboxed worker processes.
        from agentcore.server.evaluation import CheckpointEvaluator

        evaluator = owned_evaluator = CheckpointEvaluator(store, cast(KubeClient, kube))
    exports.kube, exports.store = cast(KubeClient, kube), store
    ingest.bind(cast(KubeClient, kube), repo, store)
    if engine is not None:
        exports.engine, exports.audit = engine, AuditLog(session_factory(engine), exports.clock)
    # The audit log lives in the trajectory database: JSON-RPC exports are recorded like REST ones.
    audit = exports.audit or AuditLog(repo.sessions, exports.clock)
    cache = JobCache(kube, settings.watch_namespace)
    watcher = asyncio.create_task(cache.run(), name="trainingjob-cache")
    tasks = [watcher]
    if freeze_heap:
        tasks.append(asyncio.create_task(_freeze_startup_heap(cache), name="gc-freeze"))
    service = TrainingService(kube, cache, repo, store, evaluator, settings.training_options(), audit=audit)
    methods = service.methods()
    methods.append(discover_method(methods))
    state.dispatcher = Dispatcher(
        methods, state.limiter, settings.max_batch_size, settings.max_json_depth, state.metrics.observe_rpc
    )
    state.cache, state.repo = cache, repo
    state.metrics.track_cache(lambda: len(cache), lambda: cache.ready)
    try:
        yield
    finally:
        await _stop(*tasks)
        await kube.close()
        if owned_evaluator is not None:
            owned_evaluator.close()
        if engine is not None:
            await engine.dispose()


async def _stop(*tasks: asyncio.Task[Any]) -> None:
    """Cancel the app's background tasks and wait until each has ended."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _freeze_startup_heap(cache: JobCache) -> None:
    """Once the cache holds the apiserver's jobs, move what start-up made (modules, pydantic's
    validators, the cached jobs) out of the collector's reach with gc.freeze: every full collection
    would otherwise walk all of it again. Measured with bench/rpc.py: about a tenth of the CPU of
    a get_status. Garbage made later, and replaced jobs (freed by reference counting), are collected
    as usual."""
    while not await cache.wait_synced(60.0):
        pass
    gc.collect()  # once (tens of milliseconds): what is garbage now should not be frozen
    gc.freeze()


def _share_rate_limits(state: ApiState, engine: AsyncEngine | None) -> None:
    """With ``rate_limit_store=postgresql`` the one limiter keeps its state in the database."""
    if state.settings.rate_limit_store != "postgresql":
        return
    if engine is None:
        raise ValueError("rate_limit_store=postgresql needs the server's own database (no injected repo)")
    from agentcore.server.ratelimit_pg import PostgresRateLimitStore

    state.limiter.store = PostgresRateLimitStore(engine)


# --- the JSON-RPC endpoint ---------------------------------------------------------------------------


async def _handle_rpc(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    principal = ANONYMOUS if state.verifier is None else authenticate(request, state.verifier)
    if principal is None:
        return await _unauthenticated(request, state)
    request[CALLER] = principal.sub
    limit = state.settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return await _too_large(state, principal, limit)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return await _too_large(state, principal, limit)
    if state.dispatcher is None:  # only before startup finished
        return error_response(RpcError(errors.INTERNAL_ERROR, "Service not ready"), None)
    outcome = await state.dispatcher.handle(body, principal, request[REQUEST_ID])
    request[RPC_METHODS] = outcome.methods
    headers = _rate_headers(outcome.rate)
    if outcome.body is None:
        return web.Response(status=outcome.status, headers=headers)
    return web.Response(
        body=outcome.body, status=outcome.status, content_type="application/json", headers=headers
    )


async def _unauthenticated(request: web.Request, state: ApiState) -> web.Response:
    # Unauthenticated callers share a bucket per client address, so guessing tokens is throttled too.
    decision = await state.limiter.hit(f"ip:{request.remote}", DEFAULT_BUCKET)
    if not decision.allowed:
        return error_response(rate_limited(decision), decision)
    unauthorized = RpcError(
        errors.UNAUTHORIZED, "Unauthorized: a valid bearer token is required", http_status=401
    )
    response = error_response(unauthorized, decision)
    response.headers["WWW-Authenticate"] = 'Bearer realm="agentcore-api"'
    return response


async def _too_large(state: ApiState, principal: Principal, limit: int) -> web.Response:
    decision = await state.limiter.hit(principal.sub, DEFAULT_BUCKET)
    error = RpcError(
        errors.INVALID_REQUEST,
        f"Request too large: the body may be at most {limit} bytes",
        {"max_bytes": limit},
        http_status=413,
    )
    return error_response(error, decision)


def error_response(error: RpcError, decision: Decision | None) -> web.Response:
    """A whole-request JSON-RPC error (id null) with its HTTP status."""
    return web.Response(
        body=dumps(failure(None, error)),
        status=error.http_status,
        content_type="application/json",
        headers=_rate_headers(decision),
    )


def _rate_headers(decision: Decision | None) -> dict[str, str]:
    return decision.headers() if decision is not None else {}


# --- operations ------------------------------------------------------------------------------------


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    cache_ok = state.cache is not None and state.cache.ready
    db_ok = state.repo is not None and await database_reachable(state.repo)
    checks = {
        "trainingjob_cache": "ok" if cache_ok else "not synced",
        "database": "ok" if db_ok else "unreachable",
    }
    ready = cache_ok and db_ok
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503
    )


async def database_reachable(repo: TrajectoryRepository, seconds: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(seconds), repo.sessions() as session:
            await session.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        log.warning("database not reachable: %s", type(exc).__name__)
        return False


async def _metrics(request: web.Request) -> web.Response:
    """Admin-only on the API port: metrics name methods, routes and job counts of every tenant."""
    state = request.app[STATE]
    if state.verifier is not None:
        caller = authenticate(request, state.verifier)
        if caller is None:
            return web.json_response(
                {"error": "a valid bearer token is required"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not caller.is_admin:
            return web.json_response({"error": "metrics require the admin role"}, status=403)
    return _render_metrics(state)


def _render_metrics(state: ApiState) -> web.Response:
    return web.Response(body=state.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


@contextlib.asynccontextmanager
async def _metrics_listener(state: ApiState) -> AsyncIterator[None]:
    """settings.metrics_port: /metrics alone, unauthenticated, as the operator serves it."""
    if not state.settings.metrics_port:
        yield
        return

    async def metrics(_: web.Request) -> web.Response:
        return _render_metrics(state)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, state.settings.host, state.settings.metrics_port).start()
    try:
        yield
    finally:
        await runner.cleanup()


# --- access log, request ids, last-resort error handling ----------------------------------------------


_ID_PREFIX = secrets.token_hex(8)  # per process: ids stay unique across replicas and restarts
_ID_COUNTER = itertools.count()


def _new_request_id() -> str:
    """32 hex digits, like a uuid4's, without a urandom call per request."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & (1 << 64) - 1:016x}"


@web.middleware
async def _access_middleware(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    started = time.perf_counter()
    supplied = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = supplied if _REQUEST_ID.match(supplied) else _new_request_id()
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:  # routing errors (404, 405) and the like
        _finish(request, exc.status, started)
        raise
    except Exception:
        log.exception("request %s: unhandled error", request[REQUEST_ID])
        if request.path != RPC_PATH:
            _finish(request, 500, started)
            raise
        # The JSON-RPC endpoint never answers with a 500 or a traceback.
        response = error_response(RpcError(errors.INTERNAL_ERROR, "Internal error"), None)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    _finish(request, response.status, started)
    return response


def _finish(request: web.Request, status: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    request.app[STATE].metrics.observe_http(_route(request), status, elapsed)
    _log_access(request, status, elapsed)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "other"


@contextlib.asynccontextmanager
async def _access_log_flusher() -> AsyncIterator[None]:
    """Access lines wait at most logs.FLUSH_SECONDS, also when no request comes to push them out."""

    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(logs.FLUSH_SECONDS)
            logs.flush_pending()

    task = asyncio.create_task(flush_forever(), name="access-log-flush")
    try:
        yield
    finally:
        await _stop(task)
        logs.flush_pending()


def _log_access(request: web.Request, status: int, elapsed: float) -> None:
    logs.write_fields(
        access_log,
        f"{request.method} {request.path}",
        {
            "request_id": request[REQUEST_ID],
            "remote": request.remote,
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
            "sub": request.get(CALLER),
            "rpc": request.get(RPC_METHODS, [])[:10],
            "bytes_in": request.content_length,
            "user_agent": request.headers.get("User-Agent", "")[:200],
        },
        buffered=True,
    )
