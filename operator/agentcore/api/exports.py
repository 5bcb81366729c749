"""ExportJob: an export of the Exports API (``docs/spec/exports-api.md``) as a Kubernetes resource.

The REST API's ``project_id`` maps to the resource's namespace; ``spec.projectId`` only records the
id the client used. The formats table of the spec lives here as data (:data:`FORMATS`), so the REST
endpoint, the CRD enum and the export writers share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, model_validator

from agentcore.api import labels
from agentcore.api.common import (
    CANCEL_IRREVERSIBLE,
    CamelModel,
    CancelRequest,
    CelRule,
    Condition,
    ObjectMeta,
    Phase,
    Timestamp,
    cel_rules,
    parse_listed,
)

KIND = "ExportJob"
PLURAL = "exportjobs"
SINGULAR = "exportjob"
SHORT_NAMES = ("ej",)

MAX_CONDITIONS = 32
MAX_LIST_FILTER = 1000
REDACTION_RULE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DEFAULT_REDACTION_RULE = "pii-standard"
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600
MIN_RETENTION_SECONDS = 10
MAX_RETENTION_SECONDS = 30 * 24 * 3600


class ExportType(StrEnum):
    """What to export."""

    PROJECT_SUMMARY = "project_summary"
    NODE_COMPARISON = "node_comparison"
    TELEMETRY_DUMP = "telemetry_dump"
    PERSONA_CATALOG = "persona_catalog"
    RELIABILITY_REPORT = "reliability_report"
    AUDIT_LOG = "audit_log"
    TRAJECTORIES = "trajectories"


# What an export type reads from the cluster besides the database: the namespace's TrainingJobs,
# and their trainer Jobs too (retries). The exporter's Role and its inputs follow these sets; they
# are API facts here (not in the sources) so that the operator need not import the exporter.
NEEDS_TRAININGJOBS = frozenset(
    {
        ExportType.PROJECT_SUMMARY,
        ExportType.NODE_COMPARISON,
        ExportType.PERSONA_CATALOG,
        ExportType.RELIABILITY_REPORT,
    }
)
NEEDS_TRAINER_JOBS = frozenset({ExportType.RELIABILITY_REPORT})

EXPORT_TYPE_DESCRIPTIONS: dict[ExportType, str] = {
    ExportType.PROJECT_SUMMARY: "Full project overview",
    ExportType.NODE_COMPARISON: "Compare specific nodes",
    ExportType.TELEMETRY_DUMP: "Raw telemetry data",
    ExportType.PERSONA_CATALOG: "Persona definitions",
    ExportType.RELIABILITY_REPORT: "Reliability metrics",
    ExportType.AUDIT_LOG: "Activity history",
    ExportType.TRAJECTORIES: "Training trajectories of TrainingJobs",
}


class ExportFormat(StrEnum):
    """File format of the export."""

    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    EXCEL = "excel"
    PDF = "pdf"


class PrivacyLevel(StrEnum):
    """How much individual data the export may contain."""

    FULL = "full"
    ANONYMIZED = "anonymized"
    AGGREGATED = "aggregated"
    SUMMARY = "summary"


PRIVACY_LEVEL_DESCRIPTIONS: dict[PrivacyLevel, str] = {
    PrivacyLevel.FULL: "All data included, no redaction (requires the admin role)",
    PrivacyLevel.ANONYMIZED: "PII removed: names and ids replaced by keyed hashes",
    PrivacyLevel.AGGREGATED: "No individual data: only aggregates over groups of at least kAnonymity",
    PrivacyLevel.SUMMARY: "Minimal output: high-level metrics only",
}


class ExportPhase(Phase):
    """Lifecycle phase of an ExportJob; the REST API reports it in lower case (``api_value``)."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class ExportConditionType(StrEnum):
    """Types of the conditions the operator keeps on an ExportJob."""

    ADMITTED = "Admitted"  # the queue gave it a slot: its Job exists
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class ExportConditionReason(StrEnum):
    """Reasons of the Admitted condition; the other conditions give the phase as their reason."""

    ADMITTED = "Admitted"
    QUEUED = "Queued"


class ExportEventReason(StrEnum):
    """Reasons of the Events the operator posts about an ExportJob."""

    ADMITTED = "Admitted"
    QUEUED = "Queued"
    STARTED = "Started"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class FormatInfo(CamelModel):
    """One row of the spec's formats table (``GET /api/v1/exports/formats``)."""

    model_config = ConfigDict(frozen=True)

    id: ExportFormat
    name: str
    extension: str
    content_type: str
    max_size_mb: int


FORMATS: dict[ExportFormat, FormatInfo] = {
    info.id: info
    for info in (
        FormatInfo(
            id=ExportFormat.JSON,
            name="JSON",
            extension=".json",
            content_type="application/json",
            max_size_mb=100,
        ),
        FormatInfo(
            id=ExportFormat.CSV, name="CSV", extension=".csv", content_type="text/csv", max_size_mb=500
        ),
        FormatInfo(
            id=ExportFormat.PARQUET,
            name="Apache Parquet",
            extension=".parquet",
            content_type="application/octet-stream",
            max_size_mb=1000,
        ),
        FormatInfo(
            id=ExportFormat.EXCEL,
            name="Microsoft Excel",
            extension=".xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            max_size_mb=50,
        ),
        FormatInfo(
            id=ExportFormat.PDF,
            name="PDF Report",
            extension=".pdf",
            content_type="application/pdf",
            max_size_mb=25,
        ),
    )
}
"""The spec's formats, in the spec's order."""


# --- spec --------------------------------------------------------------------------------------

START_NOT_AFTER_END = CelRule(
    rule="self.start <= self.end", message="dateRange.start must not be after dateRange.end"
)


class DateRange(CamelModel):
    """Closed time interval [start, end]."""

    model_config = ConfigDict(json_schema_extra=cel_rules(START_NOT_AFTER_END))

    start: Timestamp = Field(description="Start of the interval (RFC 3339).")
    end: Timestamp = Field(description="End of the interval (RFC 3339); not before start.")

    @model_validator(mode="after")
    def _start_not_after_end(self) -> DateRange:
        if self.start > self.end:
            raise ValueError(START_NOT_AFTER_END.message)
        return self


class ExportFilters(CamelModel):
    """Row filters; every filter set must match."""

    segments: list[str] | None = Field(
        default=None, max_length=MAX_LIST_FILTER, description="Persona segments to include."
    )
    regions: list[str] | None = Field(
        default=None, max_length=MAX_LIST_FILTER, description="Regions to include."
    )
    min_confidence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Minimum confidence of the rows to include."
    )
    agent_ids: list[str] | None = Field(
        default=None, max_length=MAX_LIST_FILTER, description="Agents whose data to include."
    )
    job_ids: list[str] | None = Field(
        default=None,
        max_length=MAX_LIST_FILTER,
        description="TrainingJobs whose trajectories to include: status.jobId values or TrainingJob names "
        "in the same namespace.",
    )
    success: bool | None = Field(
        default=None, description="Only successful (true) or only failed (false) trajectories."
    )


MIN_K_ANONYMITY = 5


class ExportConfig(CamelModel):
    """What goes into the export and how it is protected."""

    format: ExportFormat = Field(
        description="File format: "
        + ", ".join(f"{i.id.value} ({i.extension})" for i in FORMATS.values())
        + "."
    )
    privacy_level: PrivacyLevel = Field(
        default=PrivacyLevel.ANONYMIZED,
        description="Privacy level: "
        + "; ".join(f"{level.value}: {text}" for level, text in PRIVACY_LEVEL_DESCRIPTIONS.items())
        + ".",
    )
    include_telemetry: bool = Field(default=False, description="Include telemetry series.")
    include_personas: bool = Field(default=False, description="Include persona definitions.")
    include_events: bool = Field(default=False, description="Include events.")
    include_reliability: bool = Field(default=False, description="Include reliability metrics.")
    telemetry_resolution: int | None = Field(
        default=None,
        ge=1,
        description="Telemetry granularity: 1 exports raw samples, n aggregates every n samples into one.",
    )
    node_ids: list[str] | None = Field(
        default=None, max_length=MAX_LIST_FILTER, description="Nodes to export or compare."
    )
    date_range: DateRange | None = Field(default=None, description="Only data within this interval.")
    filters: ExportFilters | None = Field(default=None, description="Row filters.")
    redaction_rule: str = Field(
        default=DEFAULT_REDACTION_RULE,
        max_length=253,
        pattern=REDACTION_RULE_PATTERN,
        description="Redaction rule applied at the anonymized level (see /api/v1/exports/redaction-rules).",
    )
    k_anonymity: int = Field(
        default=MIN_K_ANONYMITY,
        # Below 5 a group is small enough to single out its members (issue 12).
        ge=MIN_K_ANONYMITY,
        description=f"Aggregated outputs suppress groups with fewer than this many individuals "
        f"(at least {MIN_K_ANONYMITY}).",
    )


class ExportJobSpec(CamelModel):
    """Desired export: its type, scope and format."""

    model_config = ConfigDict(json_schema_extra=cel_rules(CANCEL_IRREVERSIBLE))

    export_type: ExportType = Field(
        description="Export type: "
        + "; ".join(f"{kind.value}: {text}" for kind, text in EXPORT_TYPE_DESCRIPTIONS.items())
        + "."
    )
    name: str | None = Field(
        default=None,
        max_length=256,
        description="Display name, also used for the download file name; defaults to metadata.name.",
    )
    project_id: str | None = Field(
        default=None,
        max_length=253,
        description="Project id given to the REST API; the project is the resource's namespace.",
    )
    config: ExportConfig = Field(description="Export configuration.")
    cancel: CancelRequest | None = Field(default=None, description="Cancel a pending or running export.")
    retention_seconds: int | None = Field(
        default=None,
        ge=MIN_RETENTION_SECONDS,
        le=MAX_RETENTION_SECONDS,
        description="How long the file is kept after completion (default 7 days); then the operator "
        "deletes the file and this ExportJob.",
    )


# --- status ------------------------------------------------------------------------------------


class ExportOutput(CamelModel):
    """The produced file."""

    file_ref: str | None = Field(
        default=None, max_length=2048, description="Object store reference of the file."
    )
    file_name: str | None = Field(default=None, max_length=512, description="Download file name.")
    content_type: str | None = Field(default=None, max_length=256, description="MIME type of the file.")
    file_size_bytes: int | None = Field(default=None, ge=0, description="Size of the file in bytes.")
    row_count: int | None = Field(default=None, ge=0, description="Rows written.")
    expires_at: Timestamp | None = Field(default=None, description="When the file is deleted.")


class RedactionApplied(CamelModel):
    """What the privacy controls removed."""

    fields_redacted: list[str] | None = Field(
        default=None, max_length=MAX_LIST_FILTER, description="Fields hashed, replaced, bucketed or dropped."
    )
    rows_filtered: int | None = Field(
        default=None, ge=0, description="Rows suppressed (e.g. groups smaller than kAnonymity)."
    )


class ExportTiming(CamelModel):
    """When the export ran."""

    requested_at: Timestamp | None = Field(default=None, description="When the export was requested.")
    started_at: Timestamp | None = Field(default=None, description="When generation started.")
    completed_at: Timestamp | None = Field(default=None, description="When the export finished.")
    duration_seconds: float | None = Field(
        default=None, ge=0.0, description="completedAt - requestedAt in seconds."
    )


class ExportJobStatus(CamelModel):
    """Observed state of an ExportJob."""

    phase: ExportPhase | None = Field(
        default=None,
        description="Pending, Running, Completed, Failed or Cancelled (the API reports it in lower case).",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=MAX_CONDITIONS,
        description="Latest observations of the export's state.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation that the status was computed from."
    )
    export_id: UUID | None = Field(default=None, description="Export identifier of the REST API (UUID).")
    position_in_queue: int | None = Field(
        default=None, ge=0, description="Exports of the tenant ahead of this one."
    )
    estimated_duration_seconds: int | None = Field(
        default=None, ge=0, description="Estimated generation time."
    )
    output: ExportOutput | None = Field(default=None, description="The produced file.")
    redaction_applied: RedactionApplied | None = Field(default=None, description="What redaction removed.")
    timing: ExportTiming | None = Field(default=None, description="When the export ran.")
    created_by: str | None = Field(default=None, max_length=253, description="User who requested the export.")
    error: str | None = Field(default=None, max_length=32768, description="Why the export failed.")


class ExportJob(CamelModel):
    """A privacy-aware data export."""

    api_version: Literal["training.agentcore.io/v1alpha1"] = Field(
        default="training.agentcore.io/v1alpha1", description="training.agentcore.io/v1alpha1"
    )
    kind: Literal["ExportJob"] = Field(default="ExportJob", description="ExportJob")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: ExportJobSpec = Field(description="Desired export.")
    status: ExportJobStatus | None = Field(default=None, description="Observed state of the export.")

    @property
    def name(self) -> str:
        """metadata.name; every stored ExportJob has one."""
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""

    @property
    def export_id(self) -> str:
        """The REST API's id: recorded in the status, else the label the API server set, else the
        uid (an ExportJob created with kubectl)."""
        status_id = self.status.export_id if self.status else None
        return str(status_id or self.metadata.label(labels.EXPORT_ID) or self.metadata.uid or "")

    @property
    def phase(self) -> ExportPhase:
        """The phase; an ExportJob nobody has written a status for yet is Pending."""
        phase = self.status.phase if self.status else None
        return phase or ExportPhase.PENDING

    @property
    def cancel_requested(self) -> bool:
        return self.spec.cancel is not None and self.spec.cancel.requested

    @property
    def observed_status(self) -> ExportJobStatus:
        """The status, empty if none was written yet."""
        return self.status or ExportJobStatus()


def parse_exportjobs(items: Iterable[Mapping[str, Any]]) -> list[ExportJob]:
    """Listed ExportJob resources as models (see :func:`parse_listed`)."""
    return parse_listed(ExportJob, items)
