"""The Exports REST API as an OpenAPI 3.1 document, generated from the request and response models
(``exports/views.py``, the API types) and the route table below; served at
``GET /api/v1/exports/openapi.json``, without a token, like any API's description.

The table is the document's only hand-written part: which model each route takes and answers.
A test drives every route and checks each answer against this document, so the table cannot
drift from the handlers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agentcore.exports import views
from agentcore.exports.rules import RedactionRule

BASE = "/api/v1/exports"
OPENAPI_PATH = f"{BASE}/openapi.json"
Obj = dict[str, Any]

# Errors every authenticated route can answer, besides its own.
_UNAUTHORIZED = {401: "No or an invalid bearer token (UNAUTHORIZED)."}
_AUTH_ERRORS = {
    **_UNAUTHORIZED,
    403: "PERMISSION_DENIED, PROJECT_ACCESS_DENIED or PRIVACY_LEVEL_DENIED.",
}
_FIND_ERRORS = {**_AUTH_ERRORS, 404: "No export with this id in the caller's projects (NOT_FOUND)."}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation_id: str
    summary: str
    ok: int
    answer: type[BaseModel] | None  # None: no body (204)
    body: type[BaseModel] | None = None
    query: tuple[tuple[str, Obj, str], ...] = ()
    errors: dict[int, str] = field(default_factory=dict)


_LIMIT = {"type": "integer", "minimum": 1, "maximum": views.MAX_LIST_LIMIT, "default": 20}
_TYPES = {"type": "string", "enum": [t.value for t in views.ExportType]}
_PROJECT = ("project_id", {"type": "string"}, "Project (namespace); default: all of the caller's.")
ROUTES = (
    Route(
        "post",
        BASE,
        "createExport",
        "Request an export; it is queued (at most 3 run per project).",
        202,
        views.ExportCreated,
        body=views.CreateExportRequest,
        errors={
            **_AUTH_ERRORS,
            400: "INVALID_FORMAT, VALIDATION_ERROR or INVALID_REDACTION_RULE; `detail` names the field.",
            413: "EXPORT_TOO_LARGE: the estimate is over the format's limit.",
            429: "RATE_LIMITED: 10 creates per minute per caller; Retry-After says when.",
        },
    ),
    Route(
        "get",
        BASE,
        "listExports",
        "List the caller's exports, newest first.",
        200,
        views.ExportList,
        query=(
            _PROJECT,
            ("status", {"type": "string", "enum": views.STATUSES}, "Only exports in this status."),
            ("export_type", _TYPES, "Only this type."),
            ("skip", {"type": "integer", "minimum": 0, "default": 0}, "Items to skip."),
            ("limit", _LIMIT, "Page size."),
        ),
        errors={**_AUTH_ERRORS, 400: "VALIDATION_ERROR: a query parameter out of range."},
    ),
    Route(
        "get",
        f"{BASE}/formats",
        "getFormats",
        "The supported file formats.",
        200,
        views.FormatList,
        errors=_UNAUTHORIZED,
    ),
    Route(
        "get",
        f"{BASE}/redaction-rules",
        "listRedactionRules",
        "Built-in and the project's redaction rules.",
        200,
        views.RuleList,
        query=(_PROJECT,),
        errors={**_AUTH_ERRORS},
    ),
    Route(
        "get",
        f"{BASE}/redaction-rules/{{rule_id}}",
        "getRedactionRule",
        "One redaction rule with its field rules.",
        200,
        RedactionRule,
        query=(_PROJECT,),
        errors={**_AUTH_ERRORS, 404: "No such rule (NOT_FOUND)."},
    ),
    Route("get", f"{BASE}/{{id}}", "getExport", "Status", 200, views.ExportDetail, errors=_FIND_ERRORS),
    Route(
        "get",
        f"{BASE}/{{id}}/download",
        "downloadExport",
        "A presigned URL of the finished file.",
        200,
        views.DownloadLink,
        errors={
            **_FIND_ERRORS,
            409: "EXPORT_NOT_READY: the export has not completed.",
            410: "EXPORT_EXPIRED: the file was deleted.",
            429: "RATE_LIMITED: 50 downloads per minute per caller.",
            503: "DOWNLOAD_UNAVAILABLE: the file is not in this server's object store.",
        },
    ),
    Route(
        "post",
        f"{BASE}/{{id}}/cancel",
        "cancelExport",
        "Cancel a pending or running export.",
        200,
        views.ExportCancelled,
        body=views.CancelRequest,
        errors={**_FIND_ERRORS, 409: "EXPORT_NOT_CANCELLABLE: the export already finished."},
    ),
    Route(
        "delete",
        f"{BASE}/{{id}}",
        "deleteExport",
        "Delete an export and its file.",
        204,
        None,
        errors=_FIND_ERRORS,
    ),
)


@functools.cache
def document() -> Obj:
    """The OpenAPI 3.1 document (built once: models and routes are fixed at import)."""
    models = {m for r in ROUTES for m in (r.answer, r.body) if m is not None} | {views.ErrorBody}
    refs, defs = models_json_schema(
        [(m, "validation" if _is_body(m) else "serialization") for m in sorted(models, key=_name)],
        by_alias=False,
        ref_template="#/components/schemas/{model}",
    )
    paths: Obj = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AgentCore Training — Exports API",
            "version": "1.0",  # of the API (as the OpenRPC document), not the package
            "description": "Exports of trajectories, telemetry and reports through redaction, "
            "as ExportJob resources; see docs/spec/exports-api.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
    }


def _is_body(model: type[BaseModel]) -> bool:
    return any(r.body is model for r in ROUTES)


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _operation(route: Route, refs: dict[tuple[Any, Any], Obj]) -> Obj:
    def ref(model: type[BaseModel]) -> Obj:
        mode = "validation" if _is_body(model) else "serialization"
        return refs[(model, mode)]

    error = {"application/json": {"schema": ref(views.ErrorBody)}}
    responses: Obj = {str(route.ok): {"description": route.summary}}
    if route.answer is not None:
        responses[str(route.ok)]["content"] = {"application/json": {"schema": ref(route.answer)}}
    for status, text in sorted(route.errors.items()):
        responses[str(status)] = {"description": text, "content": error}
    op: Obj = {"operationId": route.operation_id, "summary": route.summary, "responses": responses}
    params = [
        {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
        for name, schema, text in route.query
    ]
    for name in ("id", "rule_id"):
        if f"{{{name}}}" in route.path:
            schema = {"type": "string", "format": "uuid"} if name == "id" else {"type": "string"}
            params.insert(0, {"name": name, "in": "path", "required": True, "schema": schema})
    if params:
        op["parameters"] = params
    if route.body is not None:
        content = {"application/json": {"schema": ref(route.body)}}
        op["requestBody"] = {"required": route.body is not views.CancelRequest, "content": content}
    return op
