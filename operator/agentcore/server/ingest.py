"""The ingestion endpoint (``/ingest/v1/``): the only way a trainer pod reaches platform data.

Trainer pods hold no database URL or object-store key. Each proves who it is with a projected
service-account token bound to the audience ``Settings.ingest_audience``; the server checks it with
a TokenReview, maps the service account to the TrainingJob that controls it (ownerReference uid),
and then lets the caller touch only that job's data: its datasets, trajectory rows naming its uid,
and objects under ``checkpoint_prefix(namespace, name)``.

Statuses: 401 for a missing, invalid or foreign-audience token (a platform JWT included); 403 for
anything outside the caller's own job; 413 for a body over its cap; 429 (Retry-After) when the
caller's job already has ``ingest_max_inflight`` requests running, 503 (Retry-After) when the
whole server has ``ingest_max_inflight_total``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import posixpath
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from agentcore.api.ingest import PREFIX, BatchResult, Dataset, ObjectList, StoredObject, TrajectoryBatch
from agentcore.api.training import KIND as TRAININGJOB_KIND
from agentcore.api.training import TrainingJob
from agentcore.datasources import DataPolicy, DataSourceError, load_queries, parse_queries
from agentcore.kube.client import SERVICEACCOUNTS, TRAININGJOB_RESOURCE, ApiError, KubeClient, Resource
from agentcore.server.auth import bearer_token
from agentcore.storage.checkpoints import checkpoint_prefix
from agentcore.storage.objectstore import ObjectNotFound, ObjectStore, ObjectTooLarge
from agentcore.storage.staged import DatasetKind, staged_key
from agentcore.storage.trajectories import TrajectoryQuotaExceeded, TrajectoryRepository

log = logging.getLogger(__name__)

TOKENREVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
SA_PREFIX = "system:serviceaccount:"
CHUNK = 1 << 20
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class IngestOptions:
    audience: str
    max_batch_bytes: int
    max_object_bytes: int
    max_inflight: int
    max_inflight_total: int
    cache_seconds: float = 60.0
    cache_entries: int = 4096


@dataclass(frozen=True)
class Caller:
    """The TrainingJob a verified token speaks for."""

    uid: str
    name: str
    namespace: str
    job: TrainingJob

    @property
    def prefix(self) -> str:
        return checkpoint_prefix(self.namespace, self.name).strip("/") + "/"


class Unauthorized(Exception):
    pass


class Forbidden(Exception):
    pass


class CallerResolver:
    """Token → Caller through TokenReview and the service account's controller, cached briefly.

    The cache is keyed by a hash of the token (tokens never stay in memory as keys), bounded in
    size, and an entry lives at most ``cache_seconds`` and never past the token's own expiry."""

    def __init__(
        self, kube: KubeClient, options: IngestOptions, clock: Callable[[], float] = time.time
    ) -> None:
        self.kube, self.options, self.clock = kube, options, clock
        self._cache: OrderedDict[str, tuple[float, Caller]] = OrderedDict()

    async def resolve(self, token: str) -> Caller:
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        self._cache.pop(key, None)
        namespace, sa = await self._review(token)
        caller = await self._job_of(namespace, sa)
        expires = min(self.clock() + self.options.cache_seconds, _token_expiry(token))
        self._cache[key] = (expires, caller)
        while len(self._cache) > self.options.cache_entries:
            self._cache.popitem(last=False)
        return caller

    async def _review(self, token: str) -> tuple[str, str]:
        audience = self.options.audience
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": [audience]},
        }
        status = (await self.kube.create(TOKENREVIEWS, review)).get("status") or {}
        if not status.get("authenticated") or audience not in (status.get("audiences") or []):
            raise Unauthorized(f"not a service-account token for audience {audience}")
        user = str((status.get("user") or {}).get("username", ""))
        namespace, _, sa = user.removeprefix(SA_PREFIX).partition(":")
        if not user.startswith(SA_PREFIX) or not namespace or not sa:
            raise Unauthorized("the token is not a service account's")
        return namespace, sa

    async def _job_of(self, namespace: str, sa: str) -> Caller:
        account = await self._get(SERVICEACCOUNTS, sa, namespace)
        owners = (account or {}).get("metadata", {}).get("ownerReferences") or []
        owner = next((o for o in owners if o.get("controller") and o.get("kind") == TRAININGJOB_KIND), None)
        if owner is None:
            raise Forbidden(f"service account {namespace}/{sa} belongs to no TrainingJob")
        raw = await self._get(TRAININGJOB_RESOURCE, str(owner.get("name", "")), namespace)
        job = TrainingJob.model_validate(raw) if raw is not None else None
        if job is None or job.metadata.uid != owner.get("uid"):
            raise Forbidden(f"service account {namespace}/{sa}: its TrainingJob no longer exists")
        return Caller(job.metadata.uid or "", job.metadata.name or "", namespace, job)

    async def _get(self, res: Resource, name: str, namespace: str) -> dict[str, Any] | None:
        try:
            return await self.kube.get(res, name, namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise


def _token_expiry(token: str) -> float:
    """The token's exp claim (already verified by the TokenReview); 0 when unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0.0


@dataclass
class Inflight:
    """Back-pressure: requests running per job and in total."""

    per_job: int
    total: int
    running: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def slot(self, uid: str) -> Any:
        if sum(self.running.values()) >= self.total:
            raise _busy(503, "the ingestion endpoint is busy")
        if self.running.get(uid, 0) >= self.per_job:
            raise _busy(429, f"job {uid} already has {self.per_job} requests in flight")
        self.running[uid] = self.running.get(uid, 0) + 1
        try:
            yield
        finally:
            self.running[uid] -= 1
            if not self.running[uid]:
                del self.running[uid]


def _busy(status: int, message: str) -> web.HTTPException:
    cls = web.HTTPTooManyRequests if status == 429 else web.HTTPServiceUnavailable
    return cls(text=message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@dataclass
class IngestDeps:
    options: IngestOptions
    kube: KubeClient | None = None
    repo: TrajectoryRepository | None = None
    store: ObjectStore | None = None
    resolver: CallerResolver | None = None
    inflight: Inflight | None = None

    def bind(self, kube: KubeClient, repo: TrajectoryRepository, store: ObjectStore | None) -> None:
        self.kube, self.repo, self.store = kube, repo, store
        self.resolver = CallerResolver(kube, self.options)
        self.inflight = Inflight(self.options.max_inflight, self.options.max_inflight_total)


INGEST = web.AppKey("agentcore_ingest", IngestDeps)


def add_ingest_routes(app: web.Application, deps: IngestDeps) -> None:
    app[INGEST] = deps
    app.router.add_get(f"{PREFIX}/datasets/{{kind}}", _datasets)
    app.router.add_post(f"{PREFIX}/trajectories", _trajectories)
    app.router.add_get(f"{PREFIX}/objects", _list_objects)
    app.router.add_put(f"{PREFIX}/objects/{{key:.+}}", _put_object)
    app.router.add_get(f"{PREFIX}/objects/{{key:.+}}", _get_object)
    app.router.add_delete(f"{PREFIX}/objects/{{key:.+}}", _delete_object)


@contextlib.asynccontextmanager
async def _call(request: web.Request) -> AsyncIterator[tuple[IngestDeps, Caller]]:
    """Authenticate, then hold one in-flight slot of the caller's job for the request."""
    deps = request.app[INGEST]
    if deps.resolver is None or deps.inflight is None:
        raise web.HTTPServiceUnavailable(text="not ready", headers={"Retry-After": "1"})
    token = bearer_token(request)
    if token is None:
        raise web.HTTPUnauthorized(text="missing bearer token")
    try:
        caller = await deps.resolver.resolve(token)
    except Unauthorized as exc:
        log.info("ingest: refused a token on %s: %s", request.path, exc)
        raise web.HTTPUnauthorized(text=str(exc)) from None
    except Forbidden as exc:
        raise web.HTTPForbidden(text=str(exc)) from None
    except (TimeoutError, ApiError, aiohttp.ClientError) as exc:
        # The kube-apiserver is unreachable or failing: the trainer retries on 503.
        log.warning("ingest: cannot verify a token now: %s", exc)
        raise _busy(503, "cannot verify the token right now") from None
    with deps.inflight.slot(caller.uid):
        yield deps, caller


def _json(model: Any) -> web.Response:
    return web.Response(text=model.model_dump_json(), content_type="application/json")


async def _datasets(request: web.Request) -> web.Response:
    if request.match_info["kind"] not in ("training", "evaluation"):
        raise web.HTTPNotFound(text="datasets are 'training' or 'evaluation'")
    kind: DatasetKind = "training" if request.match_info["kind"] == "training" else "evaluation"
    async with _call(request) as (deps, caller):
        spec = caller.job.spec
        source = spec.training_data if kind == "training" else spec.evaluation_data
        if source is None:
            return _json(Dataset(queries=[]))
        assert deps.kube is not None
        try:
            queries = await _staged(deps, caller, kind) if source.secret_key_ref is not None else None
            if queries is None:
                queries = await load_queries(source, caller.namespace, deps.kube)
        except DataSourceError as exc:
            raise web.HTTPUnprocessableEntity(text=f"{kind} data: {exc}") from None
        except ApiError as exc:
            if exc.status != 403:
                raise
            # The chart's API server may not read Secrets (it faces tenants); the operator stages
            # a job's Secret data when it creates the trainer, so only a job started by an older
            # operator gets here.
            raise web.HTTPUnprocessableEntity(
                text=f"{kind} data: the API server may not read this source ({exc}) and the "
                "operator staged no copy of it (a job started before the operator staged Secret "
                "data: recreate it)"
            ) from None
        return _json(Dataset(queries=queries))


async def _staged(deps: IngestDeps, caller: Caller, kind: DatasetKind) -> list[dict[str, Any]] | None:
    """The copy of the job's Secret data that the operator staged (storage/staged.py); None if
    there is none (a job started by an operator from before staging: the Secret is read then)."""
    if deps.store is None:
        return None
    key = staged_key(caller.namespace, caller.uid, kind)
    try:
        text = await asyncio.to_thread(deps.store.get_bytes, key, DataPolicy().max_bytes)
    except ObjectNotFound:
        return None
    except ObjectTooLarge as exc:
        raise DataSourceError(f"the staged copy {exc}") from None
    return await parse_queries(text)


async def _trajectories(request: web.Request) -> web.Response:
    async with _call(request) as (deps, caller):
        body = await _bounded_body(request, deps.options.max_batch_bytes)
        try:
            batch = await asyncio.to_thread(TrajectoryBatch.model_validate_json, body)
        except ValidationError as exc:
            raise web.HTTPBadRequest(text=f"trajectories: {exc}") from None
        for index, row in enumerate(batch.rows):
            if (row.job_id, row.namespace, row.job_name) != (caller.uid, caller.namespace, caller.name):
                raise web.HTTPForbidden(text=f"rows[{index}].job_id: not the caller's job ({caller.uid})")
        assert deps.repo is not None
        try:
            inserted = await deps.repo.add_batch([row.model_dump() for row in batch.rows])
        except TrajectoryQuotaExceeded as exc:  # not retried: the trainer fails the job saying so
            raise web.HTTPInsufficientStorage(text=f"trajectories: {exc}") from None
        return _json(BatchResult(inserted=inserted))


async def _bounded_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)


def _own_key(caller: Caller, key: str) -> str:
    """The key if it lies under the caller's checkpoint prefix; 403 otherwise."""
    normal = posixpath.normpath(key)
    parts = key.split("/")
    if key.startswith("/") or ".." in parts or "." in parts or "" in parts or normal != key:
        raise web.HTTPForbidden(text=f"object key {key!r}: relative keys without '..' or empty parts only")
    if not key.startswith(caller.prefix):
        raise web.HTTPForbidden(text=f"object key {key!r}: outside the job's prefix {caller.prefix}")
    return key


def _store(deps: IngestDeps) -> ObjectStore:
    if deps.store is None:
        raise web.HTTPServiceUnavailable(text="no object store configured", headers={"Retry-After": "5"})
    return deps.store


async def _list_objects(request: web.Request) -> web.Response:
    async with _call(request) as (deps, caller):
        prefix = request.query.get("prefix", caller.prefix)
        if not prefix.startswith(caller.prefix) or ".." in prefix.split("/"):
            raise web.HTTPForbidden(text=f"prefix {prefix!r}: outside the job's prefix {caller.prefix}")
        keys = await asyncio.to_thread(_store(deps).list, prefix)
        return _json(ObjectList(keys=keys))


async def _put_object(request: web.Request) -> web.Response:
    async with _call(request) as (deps, caller):
        key, store = _own_key(caller, request.match_info["key"]), _store(deps)
        with _scratch() as path:
            await _receive(request, path, deps.options.max_object_bytes)
            uri = await asyncio.to_thread(store.put_file, key, path)
        return _json(StoredObject(uri=uri))


async def _receive(request: web.Request, path: Path, limit: int) -> None:
    """The body into a temp file, counting: over ``limit`` is a 413 (nothing is stored)."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    size = 0
    with path.open("wb") as fh:
        async for chunk in request.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
            await asyncio.to_thread(fh.write, chunk)


async def _get_object(request: web.Request) -> web.StreamResponse:
    async with _call(request) as (deps, caller):
        key, store = _own_key(caller, request.match_info["key"]), _store(deps)
        with _scratch() as path:
            try:
                await asyncio.to_thread(store.get_file, key, path)
            except ObjectNotFound:
                raise web.HTTPNotFound(text=f"no object {key}") from None
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            response.content_length = path.stat().st_size
            await response.prepare(request)
            with path.open("rb") as fh:
                while chunk := await asyncio.to_thread(fh.read, CHUNK):
                    await response.write(chunk)
            await response.write_eof()
            return response


async def _delete_object(request: web.Request) -> web.Response:
    async with _call(request) as (deps, caller):
        key = _own_key(caller, request.match_info["key"])
        await asyncio.to_thread(_store(deps).delete, key)
        return web.Response(status=204)


@contextlib.contextmanager
def _scratch() -> Any:
    fd, name = tempfile.mkstemp(prefix="agentcore-ingest-")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
