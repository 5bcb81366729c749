"""The Exports REST API of ``docs/spec/exports-api.md`` under ``/api/v1/exports``, over ExportJob resources.

``project_id`` is the Kubernetes namespace (the tenant); a caller may use the namespaces of its
token. Every endpoint needs an authenticated caller with ``data:export`` (the admin role has every
permission); privacy level ``full`` needs the admin role for every verb (create, get, list,
download, cancel, delete): other callers get PRIVACY_LEVEL_DENIED and do not see it in a list.
Rate limits per caller: create 10/min, download 50/min (the spec's table); the "3 concurrent
exports per tenant" limit is the operator's queue, so creating a fourth export is accepted and
reports its ``position_in_queue``.

Error bodies: ``{"detail", "status_code", "error_code", ...}`` — INVALID_FORMAT,
PRIVACY_LEVEL_DENIED, EXPORT_TOO_LARGE and RATE_LIMITED exactly as the spec shows them, and
UNAUTHORIZED, PERMISSION_DENIED, PROJECT_ACCESS_DENIED, VALIDATION_ERROR, INVALID_REDACTION_RULE,
NOT_FOUND, EXPORT_NOT_READY, EXPORT_EXPIRED, EXPORT_NOT_CANCELLABLE, DOWNLOAD_UNAVAILABLE in the same shape.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import math
import os
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from agentcore.api import labels
from agentcore.api.common import ObjectMeta
from agentcore.api.exports import (
    DEFAULT_REDACTION_RULE,
    ExportFormat,
    ExportJob,
    ExportJobSpec,
    ExportOutput,
    ExportPhase,
    ExportType,
    PrivacyLevel,
    parse_exportjobs,
)
from agentcore.auth.tokens import ADMIN_ROLE, EXPORT, Principal
from agentcore.exports import pipeline, signed, views
from agentcore.exports.audit import AuditLog
from agentcore.exports.exporter import load_rule
from agentcore.exports.queue import plan_queue
from agentcore.exports.rules import BUILTIN_RULES, RULE_LABEL, RedactionRule, RuleError, rule_from_configmap
from agentcore.exports.settings import LABEL_EXPORT_ID, LABEL_EXPORTJOB, ExportSettings, key_from_ref
from agentcore.exports.sources import (
    NEEDS_TRAININGJOBS,
    SourceContext,
    SourceError,
    parse_trainingjobs,
    resolve_nodes,
)
from agentcore.exports.writers import ExportTooLarge
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import (
    CONFIGMAPS,
    EXPORTJOB_RESOURCE,
    JOBS,
    TRAININGJOB_RESOURCE,
    ApiError,
    KubeClient,
)
from agentcore.server.auth import bearer_token
from agentcore.server.jsonrpc.protocol import nesting_exceeds
from agentcore.server.ratelimit import EXPORTS_CREATE_BUCKET, EXPORTS_DOWNLOAD_BUCKET, RateLimiter
from agentcore.server.rest import openapi
from agentcore.server.rest.openapi import OPENAPI_PATH
from agentcore.storage.db import session_factory
from agentcore.storage.objectstore import ObjectStore

log = logging.getLogger("agentcore.exports.api")

BASE = "/api/v1/exports"
MAX_LIST_LIMIT = views.MAX_LIST_LIMIT
MAX_JSON_DEPTH = 32  # request bodies of this API are a few levels deep
SIGV4_MAX_SECONDS = 7 * 24 * 3600
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Rows per second per format, measured by bench/export.py (2 cores); plus a pod's start-up.
_ROWS_PER_SECOND = {
    ExportFormat.JSON: 40_000,
    ExportFormat.CSV: 40_000,
    ExportFormat.PARQUET: 60_000,
    ExportFormat.EXCEL: 12_000,
    ExportFormat.PDF: 60_000,
}
_STARTUP_SECONDS = 5


class Unauthorized(Exception):
    """Raised by an authenticator: the request carries no valid credentials."""


Authenticate = Callable[[web.Request], Awaitable[Principal]]


def bearer_authenticator(verify: Callable[[str], Principal]) -> Authenticate:
    """An authenticator from a token verifier (e.g. ``TokenVerifier.verify``)."""

    async def authenticate(request: web.Request) -> Principal:
        token = bearer_token(request)
        if token is None:
            raise Unauthorized("missing bearer token")
        try:
            return verify(token)
        except Exception as exc:
            raise Unauthorized(str(exc)) from None

    return authenticate


@dataclass
class ExportDeps:
    """Everything the routes use; tests inject fakes or real services."""

    kube: KubeClient
    authenticate: Authenticate
    store: ObjectStore | None = None  # for presigned downloads and DELETE
    engine: AsyncEngine | None = None  # for size estimates and the audit log
    settings: ExportSettings = field(default_factory=ExportSettings.from_env)
    limiter: RateLimiter = field(default_factory=RateLimiter)  # the app passes its one limiter
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    default_namespace: str = "default"
    # Where the operator runs export Jobs (never the tenant's namespace); the queue counts them.
    platform_namespace: str = field(default_factory=kubeconfig.platform_namespace)
    max_url_seconds: int = 3600  # a download URL never outlives the file, and at most this
    url_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))  # for stores without presign
    audit: AuditLog | None = None

    def __post_init__(self) -> None:
        if self.audit is None and self.engine is not None:
            self.audit = AuditLog(session_factory(self.engine), self.clock)


DEPS = web.AppKey("agentcore_export_deps", ExportDeps)


# --- errors ------------------------------------------------------------------------------------


class ApiFailure(Exception):
    def __init__(
        self, http_status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra, self.headers = (
            http_status,
            code,
            detail,
            extra,
            headers,
        )

    def response(self) -> web.Response:
        body = {"detail": self.detail, "status_code": self.status, "error_code": self.code, **self.extra}
        return web.json_response(body, status=self.status, headers=self.headers)


def _not_found(what: str = "Export not found") -> ApiFailure:
    return ApiFailure(404, "NOT_FOUND", what)


RestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: RestHandler) -> RestHandler:
    """The route's errors as the API's error bodies. A wrapper per route rather than an app
    middleware, which every other route (the JSON-RPC endpoint's hot path) would pass through."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiFailure as exc:
            return exc.response()
        except ApiError as exc:
            log.warning("Kubernetes API error on %s %s: %s", request.method, request.path, exc)
            return ApiFailure(502, "UPSTREAM_ERROR", "The cluster API refused the request").response()
        except web.HTTPException:
            raise  # aiohttp's own exceptions (404, 405, 413) keep their status
        except Exception:
            # A bug must not leak a stack trace to the client; the log has it.
            log.exception("unhandled error on %s %s", request.method, request.path)
            return ApiFailure(500, "INTERNAL_ERROR", "Internal error").response()

    return guarded


# --- callers -------------------------------------------------------------------------------------


async def _caller(request: web.Request, permission: bool = True) -> Principal:
    deps = request.app[DEPS]
    try:
        caller = await deps.authenticate(request)
    except Unauthorized as exc:
        log.info("unauthenticated request to %s: %s", request.path, exc)
        raise ApiFailure(
            401, "UNAUTHORIZED", "Missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        ) from None
    if permission and not caller.has(EXPORT):
        raise ApiFailure(403, "PERMISSION_DENIED", f"Permission '{EXPORT}' required")
    return caller


def _namespaces(caller: Principal, project_id: str | None) -> list[str | None]:
    """Namespaces to look in: the project's (if the caller may use it), else all of the caller's;
    [None] means every namespace (callers with "*")."""
    if project_id:
        if not caller.may_use(project_id):
            raise ApiFailure(403, "PROJECT_ACCESS_DENIED", f"No access to project '{project_id}'")
        return [project_id]
    if caller.all_namespaces:
        return [None]
    return list(dict.fromkeys(caller.namespaces))


async def _rate_limit(request: web.Request, caller: Principal, bucket: str) -> dict[str, str]:
    decision = await request.app[DEPS].limiter.hit(caller.sub, bucket)
    headers = decision.headers()
    if not decision.allowed:
        raise ApiFailure(
            429,
            "RATE_LIMITED",
            "Export rate limit exceeded",
            headers=headers,
            retry_after_seconds=decision.retry_after_seconds,
        )
    return headers


def _audit(request: web.Request, caller: Principal, action: str, ej: ExportJob, **details: Any) -> None:
    audit = request.app[DEPS].audit
    if audit is None:
        return
    coro = audit.record(
        ej.namespace,
        caller.sub,
        action,
        ej.kind,
        ej.name,
        request_id=request.headers.get("X-Request-ID"),
        source_ip=request.remote,
        details=details or None,
    )
    # Recording is best effort and must not delay the response.
    task = asyncio.get_running_loop().create_task(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[asyncio.Task[None]] = set()


# --- lookups --------------------------------------------------------------------------------------


async def _list(deps: ExportDeps, namespaces: list[str | None], **params: Any) -> list[ExportJob]:
    items: list[dict[str, Any]] = []
    for ns in namespaces:
        items += (await deps.kube.list(EXPORTJOB_RESOURCE, ns, **params)).get("items", [])
    return parse_exportjobs(items)


async def _by_id(deps: ExportDeps, namespaces: list[str | None], export_id: str) -> ExportJob | None:
    found = await _list(deps, namespaces, labelSelector=f"{LABEL_EXPORT_ID}={export_id}")
    if not found:  # created with kubectl: no label, the id is the uid
        found = [ej for ej in await _list(deps, namespaces) if ej.export_id == export_id]
    return found[0] if found else None


async def _find(request: web.Request, caller: Principal) -> ExportJob:
    export_id = request.match_info["id"]
    try:
        uuid.UUID(export_id)
    except ValueError:
        raise _not_found() from None
    namespaces = _namespaces(caller, request.query.get("project_id"))
    found = await _by_id(request.app[DEPS], namespaces, export_id)
    if found is None:
        raise _not_found()
    # Every verb on one export (get, download, cancel, delete) goes through here.
    _check_level(caller, found.spec.config.privacy_level)
    return found


# --- handlers --------------------------------------------------------------------------------------


async def get_openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI document; public, as it describes only what the spec already says."""
    return web.json_response(openapi.document())


async def get_formats(request: web.Request) -> web.Response:
    await _caller(request, permission=False)
    return web.json_response(views.formats())


async def list_rules(request: web.Request) -> web.Response:
    caller = await _caller(request, permission=False)
    rules = list(BUILTIN_RULES.values()) + await _custom_rules(request, caller)
    return web.json_response({"rules": [r.summary() for r in rules], "default_rule": DEFAULT_REDACTION_RULE})


async def _custom_rules(request: web.Request, caller: Principal) -> list[RedactionRule]:
    deps, rules = request.app[DEPS], []
    for ns in _namespaces(caller, request.query.get("project_id")):
        listing = await deps.kube.list(CONFIGMAPS, ns, labelSelector=f"{RULE_LABEL}=true")
        for cm in listing.get("items", []):
            if cm["metadata"]["name"] in BUILTIN_RULES:
                continue  # built-in ids win
            try:
                rules.append(rule_from_configmap(cm))
            except RuleError as exc:
                log.warning(
                    "skipping redaction rule ConfigMap %s/%s: %s",
                    cm["metadata"].get("namespace"),
                    cm["metadata"]["name"],
                    exc,
                )
    return rules


async def get_rule(request: web.Request) -> web.Response:
    caller = await _caller(request, permission=False)
    rule_id = request.match_info["rule_id"]
    if rule_id in BUILTIN_RULES:
        return web.json_response(BUILTIN_RULES[rule_id].detail())
    for rule in await _custom_rules(request, caller):
        if rule.id == rule_id:
            return web.json_response(rule.detail())
    raise _not_found(f"Redaction rule '{rule_id}' not found")


async def create_export(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    caller = await _caller(request)
    headers = await _rate_limit(request, caller, EXPORTS_CREATE_BUCKET)
    body = await _json_object(request)
    _check_format(body)
    req = _parse_request(body)
    namespace = req.project_id or caller.home_namespace(deps.default_namespace)
    if not _DNS_LABEL.match(namespace):
        raise ApiFailure(400, "VALIDATION_ERROR", f"project_id '{namespace}' is not a valid project id")
    _namespaces(caller, namespace)
    level = req.config.privacy_level
    _check_level(caller, level)
    if level != PrivacyLevel.FULL:
        await _check_rule(deps, namespace, req.config.redaction_rule, level)
    rows = await _preflight(deps, namespace, req)
    estimate = _duration_estimate(req.config.format, rows)
    export_id = views.new_export_id()
    key = deps.settings.approval_key.get_secret_value()
    manifest = views.exportjob_manifest(req, namespace, export_id, caller.sub, estimate, key)
    ej = ExportJob.model_validate(await deps.kube.create(EXPORTJOB_RESOURCE, manifest, namespace))
    position = await _position(deps, namespace, ej)
    _audit(
        request,
        caller,
        "export.create",
        ej,
        export_type=req.export_type.value,
        format=req.config.format.value,
        privacy_level=level.value,
    )
    body_out = {
        "id": export_id,
        "status": ExportPhase.PENDING.api_value,
        "export_type": req.export_type.value,
        "estimated_duration_seconds": estimate,
        "position_in_queue": position,
        "created_at": ej.metadata.creation_timestamp or views.stamp(deps.clock()),
    }
    return web.json_response(body_out, status=202, headers=headers)


def _check_level(caller: Principal, level: PrivacyLevel) -> None:
    """`full` is admin-only for every verb, not only create: the file holds raw agent data."""
    if level == PrivacyLevel.FULL and not caller.is_admin:
        raise ApiFailure(
            403,
            "PRIVACY_LEVEL_DENIED",
            "Privacy level 'full' requires admin role",
            your_role=_role(caller),
            required_role=ADMIN_ROLE,
        )


def _visible(caller: Principal, ej: ExportJob) -> bool:
    return caller.is_admin or ej.spec.config.privacy_level != PrivacyLevel.FULL


def _role(caller: Principal) -> str:
    return sorted(caller.roles)[0] if caller.roles else "viewer"


async def _json_body(request: web.Request) -> Any:
    """The decoded body; a body nested deeper than MAX_JSON_DEPTH is a 400 naming the rule (it
    used to reach a RecursionError, a 500, in the decoder or in validation)."""
    too_deep = ApiFailure(
        400, "VALIDATION_ERROR", f"Request body is JSON nested deeper than {MAX_JSON_DEPTH} levels"
    )
    text = await request.read()
    try:
        body = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError:
        raise ApiFailure(400, "VALIDATION_ERROR", "Request body must be a JSON object") from None
    if nesting_exceeds(body, MAX_JSON_DEPTH):
        raise too_deep
    return body


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise ApiFailure(400, "VALIDATION_ERROR", "Request body must be a JSON object")
    return body


def _check_format(body: dict[str, Any]) -> None:
    config = body.get("config")
    requested = config.get("format") if isinstance(config, dict) else None
    if requested is not None and requested not in {f.value for f in ExportFormat}:
        raise ApiFailure(
            400,
            "INVALID_FORMAT",
            "Invalid export format",
            requested_format=requested,
            available_formats=[f.value for f in ExportFormat],
        )


def _parse_request(body: dict[str, Any]) -> views.CreateExportRequest:
    try:
        return views.CreateExportRequest.model_validate(body)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise ApiFailure(400, "VALIDATION_ERROR", "Invalid export request", errors=errors) from None


async def _check_rule(deps: ExportDeps, namespace: str, rule_id: str, level: PrivacyLevel) -> None:
    try:
        rule = await load_rule(deps.kube, namespace, rule_id)
        rule.check_level(level)
    except RuleError as exc:
        raise ApiFailure(400, "INVALID_REDACTION_RULE", str(exc), redaction_rule=rule_id) from None


async def _preflight(deps: ExportDeps, namespace: str, req: views.CreateExportRequest) -> int | None:
    """Validate node ids and estimate the size before any work: EXPORT_TOO_LARGE is answered now.
    Returns the estimated row count (None when unknown)."""
    spec = ExportJobSpec(export_type=req.export_type, name=req.name, config=req.config)
    listed = (
        await deps.kube.list(TRAININGJOB_RESOURCE, namespace) if req.export_type in NEEDS_TRAININGJOBS else {}
    )
    ctx = SourceContext(namespace, spec, deps.engine, parse_trainingjobs(listed.get("items", [])))
    try:
        if req.export_type == ExportType.NODE_COMPARISON:
            resolve_nodes(ctx.jobs(), req.config.node_ids)
        if deps.engine is None:
            return None
        # The shapes (columns, what redaction keeps) matter here, not the pseudonyms: any key does.
        rule = (
            None
            if req.config.privacy_level == PrivacyLevel.FULL
            else await load_rule(deps.kube, namespace, req.config.redaction_rule)
        )
        prepared = await pipeline.prepare(ctx, req.name or "export", rule, secrets.token_bytes(32))
        await prepared.dataset.batches.aclose()  # type: ignore[attr-defined]
        return prepared.dataset.estimated_rows
    except SourceError as exc:
        raise ApiFailure(400, "VALIDATION_ERROR", str(exc)) from None
    except ExportTooLarge as exc:
        raise ApiFailure(
            413,
            "EXPORT_TOO_LARGE",
            "Export would exceed size limit",
            estimated_size_mb=exc.estimated_size_mb,
            max_size_mb=exc.max_size_mb,
            suggestion=exc.suggestion,
        ) from None


def _duration_estimate(fmt: ExportFormat, rows: int | None) -> int:
    return _STARTUP_SECONDS + math.ceil((rows or 0) / _ROWS_PER_SECOND[fmt])


async def _position(deps: ExportDeps, namespace: str, ej: ExportJob) -> int:
    exportjobs = await _list(deps, [namespace])
    selector = f"{LABEL_EXPORTJOB},{labels.EXPORTJOB_NAMESPACE}={namespace}"
    jobs = await deps.kube.list(JOBS, deps.platform_namespace, labelSelector=selector)
    owners = (
        ObjectMeta.model_validate(j.get("metadata") or {}).label(LABEL_EXPORTJOB)
        for j in jobs.get("items", [])
    )
    admitted = {owner for owner in owners if owner}
    slot = plan_queue(exportjobs, admitted, deps.settings.max_concurrent).get(ej.name)
    return slot.position or 0 if slot is not None else 0


async def get_export(request: web.Request) -> web.Response:
    caller = await _caller(request)
    return web.json_response(views.detail(await _find(request, caller)))


async def list_exports(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    caller = await _caller(request)
    query = request.query
    status = _choice(query.get("status"), [p.api_value for p in ExportPhase], "status")
    export_type = _choice(query.get("export_type"), [t.value for t in ExportType], "export_type")
    skip = _int_param(query.get("skip"), 0, 0, None, "skip")
    limit = _int_param(query.get("limit"), 20, 1, MAX_LIST_LIMIT, "limit")
    items = await _list(deps, _namespaces(caller, query.get("project_id")))
    items = [ej for ej in items if _visible(caller, ej)]
    if status:
        items = [ej for ej in items if ej.phase.api_value == status]
    if export_type:
        items = [ej for ej in items if ej.spec.export_type == export_type]
    items.sort(key=lambda ej: (ej.metadata.creation_timestamp or "", ej.name), reverse=True)
    page = [views.list_item(ej) for ej in items[skip : skip + limit]]
    return web.json_response({"items": page, "total": len(items)})


def _choice(value: str | None, allowed: Collection[str], name: str) -> str | None:
    if value is not None and value not in allowed:
        raise ApiFailure(400, "VALIDATION_ERROR", f"{name} must be one of: {', '.join(allowed)}")
    return value


def _int_param(value: str | None, default: int, low: int, high: int | None, name: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiFailure(400, "VALIDATION_ERROR", f"{name} must be an integer") from None
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiFailure(400, "VALIDATION_ERROR", f"{name} must be {bounds}")
    return number


async def download_export(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    caller = await _caller(request)
    ej = await _find(request, caller)
    headers = await _rate_limit(request, caller, EXPORTS_DOWNLOAD_BUCKET)
    phase = ej.phase
    if phase != ExportPhase.COMPLETED:
        raise ApiFailure(
            409, "EXPORT_NOT_READY", f"Export is {phase.api_value}, not completed", status=phase.api_value
        )
    output = ej.observed_status.output or ExportOutput()
    now = deps.clock()
    # A Completed export without an expiry is treated as expired: it cannot be kept forever.
    remaining = math.floor((output.expires_at - now).total_seconds()) if output.expires_at else 0
    if remaining < 1:
        raise ApiFailure(410, "EXPORT_EXPIRED", "Export has expired")
    key = _store_key(deps, ej)
    if key is None:
        raise ApiFailure(
            503, "DOWNLOAD_UNAVAILABLE", "The export's file is not in this server's object store"
        )
    valid = min(remaining, deps.max_url_seconds, SIGV4_MAX_SECONDS)
    presign = getattr(deps.store, "presign", None)
    if presign is not None:
        url = await asyncio.to_thread(presign, key, valid)
    else:  # a local directory: this server signs and serves the file
        until = math.floor(now.timestamp()) + valid
        sig = signed.signature(deps.url_key, ej.export_id, until)
        url = f"{request.url.origin()}{BASE}/{ej.export_id}/file?expires={until}&signature={sig}"
    _audit(request, caller, "export.download", ej, url_seconds=valid)
    return web.json_response(
        {
            "download_url": url,
            "expires_at": views.stamp(now + dt.timedelta(seconds=valid)),
            "file_name": output.file_name,
            "file_size_bytes": output.file_size_bytes,
            "content_type": output.content_type,
        },
        headers=headers,
    )


async def cancel_export(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    caller = await _caller(request)
    ej = await _find(request, caller)
    phase = ej.phase
    if phase.is_terminal:
        raise ApiFailure(
            409, "EXPORT_NOT_CANCELLABLE", f"Export is already {phase.api_value}", status=phase.api_value
        )
    reason = await _reason(request) or f"cancelled by {caller.sub}"
    patch = {"spec": {"cancel": {"requested": True, "reason": reason[:1024]}}}
    await deps.kube.patch(EXPORTJOB_RESOURCE, ej.name, patch, ej.namespace)
    _audit(request, caller, "export.cancel", ej)
    return web.json_response(
        {
            "id": ej.export_id,
            "status": ExportPhase.CANCELLED.api_value,
            "message": "Export cancelled successfully",
        }
    )


async def _reason(request: web.Request) -> str | None:
    if not request.can_read_body:
        return None
    try:
        body = await _json_body(request)
    except ApiFailure:
        return None  # the reason is optional: an unreadable body is no reason
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) and reason.strip() else None


async def delete_export(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    caller = await _caller(request)
    ej = await _find(request, caller)
    key = _store_key(deps, ej)
    if key and deps.store is not None:
        await asyncio.to_thread(deps.store.delete, key)
    try:
        # Owner references take the export Job, pod, RBAC and Secret with it; a running pod is
        # stopped, and its final status write fails, so it removes anything it uploaded.
        await deps.kube.delete(EXPORTJOB_RESOURCE, ej.name, ej.namespace, propagationPolicy="Background")
    except ApiError as exc:
        if exc.status != 404:
            raise
    _audit(request, caller, "export.delete", ej)
    return web.Response(status=204)


def _store_key(deps: ExportDeps, ej: ExportJob) -> str | None:
    """The export file's key in this server's object store, or None if it is not there (or the
    status names another object than the export's own)."""
    output = ej.observed_status.output or ExportOutput()
    if deps.store is None or not output.file_ref:
        return None
    return key_from_ref(deps.store.uri, output.file_ref, ej.namespace, ej.export_id)


def _inside(root: Path, key: str) -> Path | None:
    """root/key if it stays inside root (lexically: no file system access)."""
    base = Path(os.path.normpath(root))
    path = Path(os.path.normpath(base / key))
    return path if path.is_relative_to(base) else None


async def serve_file(request: web.Request) -> web.StreamResponse:
    """The target of a server-signed download URL (local object stores only)."""
    deps = request.app[DEPS]
    export_id = request.match_info["id"]
    try:
        expires = int(request.query.get("expires", ""))
    except ValueError:
        raise ApiFailure(403, "URL_INVALID", "Invalid download URL") from None
    if not signed.valid(
        deps.url_key, export_id, expires, request.query.get("signature", ""), deps.clock().timestamp()
    ):
        raise ApiFailure(403, "URL_EXPIRED_OR_INVALID", "Request has expired or the signature does not match")
    found = await _by_id(deps, [None], export_id)
    output = (found.observed_status.output if found else None) or ExportOutput()
    root = getattr(deps.store, "root", None)
    key = _store_key(deps, found) if found is not None else None
    if root is None or key is None:
        raise _not_found()
    path = _inside(Path(root), key)
    if path is None:  # a status that points outside the store
        raise _not_found()
    headers = {
        "Content-Type": output.content_type or "application/octet-stream",
        "Content-Disposition": pipeline.content_disposition(output.file_name or "export"),
    }
    return web.FileResponse(path, headers=headers)


def add_export_routes(app: web.Application, deps: ExportDeps) -> None:
    """Mount the Exports API on `app` (e.g. the API server's application)."""
    app[DEPS] = deps
    app.router.add_get(OPENAPI_PATH, _guarded(get_openapi))  # before {id}: the document is not an export
    app.router.add_get(f"{BASE}/formats", _guarded(get_formats))
    app.router.add_get(f"{BASE}/redaction-rules", _guarded(list_rules))
    app.router.add_get(f"{BASE}/redaction-rules/{{rule_id}}", _guarded(get_rule))
    app.router.add_post(BASE, _guarded(create_export))
    app.router.add_get(BASE, _guarded(list_exports))
    app.router.add_get(f"{BASE}/{{id}}", _guarded(get_export))
    app.router.add_get(f"{BASE}/{{id}}/download", _guarded(download_export))
    app.router.add_post(f"{BASE}/{{id}}/cancel", _guarded(cancel_export))
    app.router.add_delete(f"{BASE}/{{id}}", _guarded(delete_export))
    app.router.add_get(f"{BASE}/{{id}}/file", _guarded(serve_file))
