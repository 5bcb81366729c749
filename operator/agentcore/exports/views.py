"""The REST API's shapes: the create request, ExportJob resources rendered as the spec's JSON
(snake_case, lower-case status, the export id as ``id``), and the model of every response (the
OpenAPI document is generated from them)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from agentcore.api.common import ObjectMeta
from agentcore.api.exports import (
    FORMATS,
    MAX_RETENTION_SECONDS,
    MIN_RETENTION_SECONDS,
    ExportConfig,
    ExportFormat,
    ExportJob,
    ExportJobSpec,
    ExportPhase,
    ExportType,
    FormatInfo,
)
from agentcore.api.labels import FULL_EXPORT_APPROVAL
from agentcore.exports.approval import approval
from agentcore.exports.settings import ANNOTATION_CREATED_BY, ANNOTATION_ESTIMATED_SECONDS, LABEL_EXPORT_ID

Obj = dict[str, Any]


class CreateExportRequest(BaseModel):
    """POST /api/v1/exports body."""

    model_config = ConfigDict(extra="forbid")

    project_id: str | None = Field(default=None, max_length=253)
    name: str | None = Field(default=None, max_length=256)
    export_type: ExportType
    config: ExportConfig
    retention_seconds: int | None = Field(default=None, ge=MIN_RETENTION_SECONDS, le=MAX_RETENTION_SECONDS)


def resource_name(export_id: str) -> str:
    return f"export-{export_id}"


def exportjob_manifest(
    request: CreateExportRequest,
    namespace: str,
    export_id: str,
    created_by: str,
    estimate: int | None,
    approval_key: str = "",
) -> Obj:
    """The ExportJob to create, signed when there is an approval key (approval.py)."""
    spec = ExportJobSpec(
        export_type=request.export_type,
        name=request.name,
        project_id=request.project_id,
        config=request.config,
        retention_seconds=request.retention_seconds,
    )
    annotations = {ANNOTATION_CREATED_BY: created_by[:1024]}
    if estimate is not None:
        annotations[ANNOTATION_ESTIMATED_SECONDS] = str(estimate)
    name = resource_name(export_id)
    if approval_key:  # every export: the signature also vouches for created-by (approval.py)
        signed = approval(approval_key, namespace, name, annotations[ANNOTATION_CREATED_BY], spec)
        annotations[FULL_EXPORT_APPROVAL] = signed
    meta = ObjectMeta(
        name=name,
        namespace=namespace,
        labels={LABEL_EXPORT_ID: export_id},
        annotations=annotations,
    )
    return ExportJob(metadata=meta, spec=spec).to_resource()


def new_export_id() -> str:
    return str(uuid.uuid4())


def detail(ej: ExportJob) -> Obj:
    """GET /api/v1/exports/{id}."""
    spec, status, phase = ej.spec, ej.observed_status, ej.phase
    out: Obj = {
        "id": ej.export_id,
        "name": spec.name or ej.name,
        "tenant_id": ej.namespace,
        "project_id": ej.namespace,
        "status": phase.api_value,
        "export_type": spec.export_type.value,
        "config": spec.config.to_api(),
        "created_at": ej.metadata.creation_timestamp,
        "created_by": status.created_by,
    }
    if status.output is not None:
        output = status.output.to_api()
        out["output"] = {k: output.get(k) for k in ("file_ref", "file_size_bytes", "row_count", "expires_at")}
    if status.redaction_applied is not None:
        out["redaction_applied"] = status.redaction_applied.to_api()
    out["timing"] = status.timing.to_api() if status.timing else {}
    if phase == ExportPhase.PENDING:
        out["position_in_queue"] = status.position_in_queue or 0
    if status.estimated_duration_seconds is not None:
        out["estimated_duration_seconds"] = status.estimated_duration_seconds
    if status.error and phase in (ExportPhase.FAILED, ExportPhase.CANCELLED):
        out["error"] = status.error
    return out


def list_item(ej: ExportJob) -> Obj:
    """One item of GET /api/v1/exports."""
    output = ej.observed_status.output
    dumped = output.to_api() if output else {}
    return {
        "id": ej.export_id,
        "name": ej.spec.name or ej.name,
        "status": ej.phase.api_value,
        "export_type": ej.spec.export_type.value,
        "format": ej.spec.config.format.value,
        "file_size_bytes": dumped.get("file_size_bytes"),
        "created_at": ej.metadata.creation_timestamp,
        "expires_at": dumped.get("expires_at"),
    }


def formats() -> Obj:
    return {"formats": [info.to_api() for info in FORMATS.values()]}


def stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- response shapes ---------------------------------------------------------------------------
# What each endpoint answers, for the OpenAPI document (server/rest/openapi.py). Strict (extra
# keys are a schema violation), so the suite's conformance check catches drift either way.

Stamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
# ExportPhase.api_value of each phase (a unit test keeps them equal).
Status = Literal["pending", "running", "completed", "failed", "cancelled"]
STATUSES: list[str] = list(get_args(Status))
MAX_LIST_LIMIT = 100  # page size limit of GET /api/v1/exports


def _status(description: str = "The export's status.") -> Any:
    return Field(description=description)


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportCreated(Shape):
    """202 of POST /api/v1/exports."""

    id: str = Field(description="The export's id (a UUID).")
    status: Status = _status()
    export_type: ExportType
    estimated_duration_seconds: int | None = Field(description="Estimated generation time.")
    position_in_queue: int = Field(ge=0, description="Exports of the project ahead of this one.")
    created_at: Stamp | None


class OutputSummary(Shape):
    file_ref: str | None
    file_size_bytes: int | None
    row_count: int | None
    expires_at: Stamp | None


class RedactionSummary(Shape):
    fields_redacted: list[str] | None = None
    rows_filtered: int | None = None


class TimingSummary(Shape):
    requested_at: Stamp | None = None
    started_at: Stamp | None = None
    completed_at: Stamp | None = None
    duration_seconds: float | None = None


class ExportDetail(Shape):
    """GET /api/v1/exports/{id}."""

    id: str
    name: str
    tenant_id: str
    project_id: str
    status: Status = _status()
    export_type: ExportType
    config: ExportConfig
    created_at: Stamp | None
    created_by: str | None
    output: OutputSummary | None = Field(default=None, description="Present once the file exists.")
    redaction_applied: RedactionSummary | None = None
    timing: TimingSummary
    position_in_queue: int | None = Field(default=None, ge=0, description="Only while pending.")
    estimated_duration_seconds: int | None = None
    error: str | None = Field(default=None, description="Why it failed or was cancelled.")


class ExportListItem(Shape):
    id: str
    name: str
    status: Status = _status()
    export_type: ExportType
    format: ExportFormat
    file_size_bytes: int | None
    created_at: Stamp | None
    expires_at: Stamp | None


class ExportList(Shape):
    """GET /api/v1/exports."""

    items: list[ExportListItem]
    total: int = Field(ge=0, description="Matching exports before skip/limit.")


class DownloadLink(Shape):
    """GET /api/v1/exports/{id}/download."""

    download_url: str = Field(description="Presigned URL of the file; valid until expires_at.")
    expires_at: Stamp
    file_name: str | None
    file_size_bytes: int | None
    content_type: str | None


class ExportCancelled(Shape):
    """POST /api/v1/exports/{id}/cancel."""

    id: str
    status: Status = _status()
    message: str


class CancelRequest(Shape):
    """Optional body of POST /api/v1/exports/{id}/cancel."""

    reason: str | None = Field(default=None, max_length=1024)


class FormatList(Shape):
    """GET /api/v1/exports/formats."""

    formats: list[FormatInfo]


class RuleSummary(Shape):
    id: str
    name: str
    description: str
    is_default: bool
    fields_affected: int = Field(ge=0)


class RuleList(Shape):
    """GET /api/v1/exports/redaction-rules."""

    rules: list[RuleSummary]
    default_rule: str


class ErrorBody(BaseModel):
    """Every error: the spec's shape; some codes add fields (e.g. EXPORT_TOO_LARGE's estimate)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    status_code: int
    error_code: str
