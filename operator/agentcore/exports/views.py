"""The REST API's shapes: the create request, and ExportJob resources rendered as the spec's JSON
(snake_case, lower-case status, the export id as ``id``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentcore.api.common import ObjectMeta
from agentcore.api.exports import (
    FORMATS,
    MAX_RETENTION_SECONDS,
    MIN_RETENTION_SECONDS,
    ExportConfig,
    ExportJob,
    ExportJobSpec,
    ExportPhase,
    ExportType,
)
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
    request: CreateExportRequest, namespace: str, export_id: str, created_by: str, estimate: int | None
) -> Obj:
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
    meta = ObjectMeta(
        name=resource_name(export_id),
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
