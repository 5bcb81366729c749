"""Parameters of the training.* methods, as pydantic models; their results are the SDK's
(agentcore_sdk.models), re-exported here.

Parameters are validated with these models; results are documented by them (``rpc.discover``) and
tests check responses against them. Field names are the spec's snake_case; the nested API types
(GRPOConfig, TrainingQuery, Webhook) are the same models the TrainingJob resource is generated
from, so the JSON-RPC API and the CRD accept the same values.

Scalars are strict where the spec's "invalid parameter types" case applies: ``"10"`` is not a
limit and ``"yes"`` is not a boolean (-32602), while a float field accepts integers.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, model_validator

from agentcore.api import MIN_TRAINING_QUERIES, GRPOConfig, TrainingQuery, Webhook
from agentcore.api.training import LABEL_VALUE_PATTERN, WorkerResources, Workers, check_workers
from agentcore_sdk.models import (
    CancelResult,
    EvaluateResult,
    EvaluationMetrics,
    ExportTrajectoriesResult,
    JobStatusResult,
    ListJobsResult,
    StartGrpoResult,
    TrajectoryResult,
)

MAX_EXPORT_LIMIT = 10_000
DEFAULT_EXPORT_LIMIT = 1000
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 20
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

JobStatusValue = Literal["queued", "running", "completed", "failed", "cancelled"]
JobId = Annotated[UUID, Field(description="Training job identifier: the TrainingJob's metadata.uid.")]
Namespace = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Kubernetes namespace (tenant); one of the token's namespaces.",
    ),
]
AgentId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="Agent identifier (letters, digits, '-', '_', '.'; at most 63 characters).",
    ),
]
Cursor = Annotated[
    str, Field(min_length=1, max_length=512, description="Opaque cursor from a previous next_cursor.")
]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartGrpoConfig(GRPOConfig):
    """The spec's GRPOConfig plus the run's shape, which the resource keeps beside its config
    (``config.workers`` and ``config.resources`` here are ``spec.workers`` and ``spec.resources``
    there: the same field definitions, `Workers` and `WorkerResources`)."""

    workers: Workers = 1
    resources: WorkerResources = None

    @model_validator(mode="after")
    def _workers_fit_the_batch(self) -> StartGrpoConfig:
        check_workers(self.workers, self.batch_size)
        return self

    def grpo(self) -> GRPOConfig:
        """The TrainingJob's spec.config: everything but the run's shape."""
        return GRPOConfig.model_validate(self.model_dump(exclude={"workers", "resources"}))


class StartGrpoParams(Params):
    """Start a new GRPO training job."""

    agent_id: AgentId
    config: StartGrpoConfig = Field(description="Training configuration.")
    training_data: list[TrainingQuery] = Field(
        min_length=MIN_TRAINING_QUERIES, description=f"Training queries (min {MIN_TRAINING_QUERIES})."
    )
    evaluation_data: list[TrainingQuery] | None = Field(
        default=None, min_length=1, description="Held-out evaluation queries."
    )
    webhooks: list[Webhook] | None = Field(
        default=None, max_length=10, description="Extension: webhooks notified of job events."
    )
    namespace: Namespace | None = Field(
        default=None, description="Extension: namespace of the job; default the token's first namespace."
    )


class GetStatusParams(Params):
    """Get current status and metrics for a training job."""

    job_id: JobId


class CancelParams(Params):
    """Cancel a running or queued training job."""

    job_id: JobId
    reason: str | None = Field(default=None, max_length=1024, description="Cancellation reason.")


class EvaluateParams(Params):
    """Run evaluation on a trained agent with held-out queries."""

    job_id: JobId
    checkpoint_id: str | None = Field(
        default=None, min_length=1, max_length=253, description="Specific checkpoint (default: best)."
    )
    evaluation_queries: list[TrainingQuery] | None = Field(
        default=None,
        min_length=1,
        description="Custom queries (uses the job's evaluation data if not provided).",
    )


class ExportTrajectoriesParams(Params):
    """Export trajectory data for analysis or debugging."""

    job_id: JobId
    success_only: StrictBool = Field(default=False, description="Only export successful trajectories.")
    min_reward: StrictFloat | None = Field(default=None, description="Minimum reward threshold.")
    limit: StrictInt = Field(
        default=DEFAULT_EXPORT_LIMIT,
        ge=1,
        description=f"Max trajectories (default {DEFAULT_EXPORT_LIMIT}, max {MAX_EXPORT_LIMIT}; "
        "more is error -40005).",
        json_schema_extra={"maximum": MAX_EXPORT_LIMIT},
    )
    offset: StrictInt = Field(default=0, ge=0, description="Pagination offset (default 0).")
    cursor: Cursor | None = Field(
        default=None,
        description="Extension: continue after the previous page (its next_cursor); fast at any depth. "
        "Not combined with offset.",
    )


class ListJobsParams(Params):
    """List training jobs in the caller's namespaces, newest first."""

    agent_id: AgentId | None = None
    status: JobStatusValue | None = Field(default=None, description="Only jobs in this status.")
    limit: StrictInt = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT, description="Page size.")
    offset: StrictInt = Field(default=0, ge=0, description="Pagination offset.")
    cursor: Cursor | None = None
    namespace: Namespace | None = Field(default=None, description="Only this namespace.")


# The results are the SDK's models: one definition for client and server.
__all__ = [
    "CancelResult",
    "EvaluateResult",
    "EvaluationMetrics",
    "ExportTrajectoriesResult",
    "JobStatusResult",
    "ListJobsResult",
    "StartGrpoResult",
    "TrajectoryResult",
]
