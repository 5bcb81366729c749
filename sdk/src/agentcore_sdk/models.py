"""Typed results of the Training (JSON-RPC) and Exports (REST) APIs.

The API server documents and checks its JSON-RPC results with these same models
(agentcore.server.jsonrpc.models imports them), so client and server share one definition.
Unknown fields are kept (``extra="allow"``) so that an older client keeps working against a
newer server; the server checks its own output with ``validate_exact``.
"""

from __future__ import annotations

from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

JobStatusValue = Literal["queued", "running", "completed", "failed", "cancelled"]
ExportStatusValue = Literal["pending", "running", "completed", "failed", "cancelled"]


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    @classmethod
    def validate_exact(cls, data: Any) -> Self:
        """model_validate that also refuses fields the model does not declare (at any depth)."""
        model = cls.model_validate(data)
        unknown = model.unknown_fields()
        if unknown:
            raise ValueError(f"{cls.__name__}: undeclared fields {', '.join(unknown)}")
        return model

    def unknown_fields(self, prefix: str = "") -> list[str]:
        found = [prefix + key for key in self.model_extra or {}]
        for name in type(self).model_fields:
            found += [p for child in _models(getattr(self, name)) for p in child.unknown_fields(f"{name}.")]
        return found


def _models(value: Any) -> list[ApiModel]:
    if isinstance(value, ApiModel):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, ApiModel)]
    return []


# --- Training API (JSON-RPC) ---------------------------------------------------------------------


class StartGrpoResult(ApiModel):
    job_id: UUID
    status: Literal["queued"]
    agent_id: str
    total_iterations: int
    created_at: str | None = Field(description="RFC 3339 creation time of the TrainingJob.")
    namespace: str = Field(description="Extension: namespace of the TrainingJob.")
    name: str = Field(description="Extension: name of the TrainingJob (kubectl get tj NAME).")


class JobStatusResult(ApiModel):
    job_id: UUID
    agent_id: str
    status: JobStatusValue
    current_iteration: int
    total_iterations: int
    progress_percent: float
    metrics: dict[str, float | int] = Field(
        description="Latest metrics present: train_loss, validation_accuracy, avg_reward, "
        "trajectories_generated, reward_std, success_rate, kl, clip_ratio, frac_reward_zero_std."
    )
    cost_usd: str
    budget_usd: str
    budget_remaining_percent: float
    started_at: str | None
    estimated_completion: str | None
    best_checkpoint_id: str | None
    created_at: str | None = None
    completed_at: str | None = None
    reason: str | None = None
    message: str | None = None
    namespace: str
    name: str


class CancelResult(ApiModel):
    job_id: UUID
    status: Literal["cancelled", "cancelling"] = Field(
        description="cancelled, or cancelling when the job had not stopped within the server's wait."
    )
    cancelled_at: str | None
    iterations_completed: int
    checkpoint_saved: bool | None
    checkpoint_id: str | None
    reason: str | None = None


class EvaluationMetrics(ApiModel):
    success_rate: float | None = None
    avg_reward: float | None = None
    avg_steps: float | None = None
    tool_accuracy: float | None = None


class BaselineComparison(ApiModel):
    """Trained policy versus the initial policy on the same evaluation queries (paired tests).

    The one definition of these fields: the TrainingJob resource's
    ``status.evaluation.baselineComparison`` (agentcore.api.training) derives from it, so the
    descriptions are the CRD's too.
    """

    success_rate_improvement: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Trained minus baseline success rate."
    )
    avg_reward_improvement: float | None = Field(
        default=None, description="Trained minus baseline mean reward."
    )
    p_value: float | None = Field(
        default=None, ge=0.0, le=1.0, description="p-value of the paired significance test."
    )
    statistically_significant: bool | None = Field(
        default=None, description="p_value below 0.05 and a positive improvement."
    )


class EvaluateResult(ApiModel):
    job_id: UUID
    checkpoint_id: str | None
    metrics: EvaluationMetrics
    baseline_comparison: BaselineComparison | None = None
    queries_evaluated: int
    evaluation_duration_ms: int


class TrajectoryResult(ApiModel):
    trajectory_id: str
    job_id: str
    agent_id: str
    iteration: int
    query: str
    steps: list[dict[str, Any]]
    reward: float
    normalized_reward: float
    advantage: float
    success: bool
    execution_time_ms: int
    created_at: str


class ExportTrajectoriesResult(ApiModel):
    job_id: UUID
    trajectories: list[TrajectoryResult]
    total_count: int
    returned_count: int
    has_more: bool
    next_cursor: str | None = Field(description="Extension: pass as cursor to get the next page.")


class ListJobsResult(ApiModel):
    jobs: list[JobStatusResult]
    total_count: int
    has_more: bool
    next_cursor: str | None


# --- Exports API (REST) --------------------------------------------------------------------------


class ExportCreated(ApiModel):
    id: str
    status: ExportStatusValue
    export_type: str
    estimated_duration_seconds: int | None = None
    position_in_queue: int
    created_at: str | None


class ExportOutput(ApiModel):
    file_ref: str | None = None
    file_size_bytes: int | None = None
    row_count: int | None = None
    expires_at: str | None = None


class RedactionApplied(ApiModel):
    fields_redacted: list[str] = []
    rows_filtered: int = 0


class ExportJob(ApiModel):
    id: str
    name: str | None = None
    tenant_id: str | None = None
    project_id: str | None = None
    status: ExportStatusValue
    export_type: str
    config: dict[str, Any] = {}
    output: ExportOutput | None = None
    redaction_applied: RedactionApplied | None = None
    timing: dict[str, Any] = {}
    created_at: str | None = None
    created_by: str | None = None
    position_in_queue: int | None = None
    estimated_duration_seconds: int | None = None
    error: str | None = None


class ExportListItem(ApiModel):
    id: str
    name: str | None
    status: ExportStatusValue
    export_type: str | None
    format: str | None
    file_size_bytes: int | None
    created_at: str | None
    expires_at: str | None


class ExportList(ApiModel):
    items: list[ExportListItem]
    total: int


class ExportCancelled(ApiModel):
    id: str
    status: str
    message: str


class DownloadLink(ApiModel):
    download_url: str
    expires_at: str
    file_name: str | None
    file_size_bytes: int | None
    content_type: str | None


class ExportFormat(ApiModel):
    id: str
    name: str
    extension: str
    content_type: str
    max_size_mb: int


class ExportFormats(ApiModel):
    formats: list[ExportFormat]


class RedactionRuleSummary(ApiModel):
    id: str
    name: str
    description: str | None = None
    is_default: bool
    fields_affected: int


class RedactionRules(ApiModel):
    rules: list[RedactionRuleSummary]
    default_rule: str


class RedactionField(ApiModel):
    path: str
    action: str


class RedactionRule(ApiModel):
    id: str
    name: str
    description: str | None = None
    fields: list[RedactionField]
    is_active: bool | None = None
    created_at: str | None = None
