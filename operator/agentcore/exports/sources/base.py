"""What every export source shares: the context it reads from, TrainingJob accessors, table and
summary helpers, and :class:`Source`, the builders of one export type per privacy level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from agentcore.api import labels
from agentcore.api.batchjob import BatchJob
from agentcore.api.common import Condition, parse_listed
from agentcore.api.exports import ExportConfig, ExportJobSpec, PrivacyLevel
from agentcore.api.training import (
    BaselineComparison,
    Evaluation,
    TrainingJob,
    TrainingJobStatus,
    TrainingMetrics,
    TrainingPhase,
    TrainingReason,
)
from agentcore.exports import sql
from agentcore.exports.schema import ChartSpec, Column, Dataset, Kind, Row, batched
from agentcore.exports.sql import GroupStats, Scope
from agentcore.storage.tables import Trajectory

ItemT = TypeVar("ItemT")
S, N, F, B, TS, D, J = (Kind.STRING, Kind.INT, Kind.FLOAT, Kind.BOOL, Kind.TIMESTAMP, Kind.DECIMAL, Kind.JSON)
SEGMENT_LABEL = labels.SEGMENT
REGION_LABEL = labels.REGION
TRAINER_JOB_LABEL = labels.TRAININGJOB


class SourceError(ValueError):
    """The export asks for something that does not exist (e.g. unknown node ids)."""


@dataclass
class SourceContext:
    """What a source reads. TrainingJobs and trainer Jobs may be handed over as the apiserver's
    JSON (a listing's items): each is parsed into its model once, here, and read typed after."""

    namespace: str
    spec: ExportJobSpec
    engine: AsyncEngine | None
    trainingjobs: list[TrainingJob] = field(default_factory=list)  # every TrainingJob of the namespace
    trainer_jobs: dict[str, BatchJob] = field(default_factory=dict)  # batch Jobs by TrainingJob name

    def __post_init__(self) -> None:
        self.trainingjobs = parse_trainingjobs(self.trainingjobs)
        self.trainer_jobs = {name: _batch_job(job) for name, job in self.trainer_jobs.items()}

    @property
    def config(self) -> ExportConfig:
        return self.spec.config

    @property
    def scope(self) -> Scope:
        flt = self.config.filters
        labelled = None
        if flt is not None and (flt.segments or flt.regions):
            labelled = sql.job_ids(uid_of(tj) for tj in self.trainingjobs if _labels_match(tj, self.config))
        sqlite = self.engine is not None and self.engine.dialect.name == "sqlite"
        return Scope(self.namespace, self.config, labelled, sqlite)

    @property
    def db(self) -> AsyncEngine:
        if self.engine is None:
            raise SourceError("this export needs the database (AGENTCORE_DATABASE_URL)")
        return self.engine

    def jobs(self) -> list[TrainingJob]:
        """The TrainingJobs the export's filters select, oldest first."""
        chosen = [tj for tj in self.trainingjobs if _job_selected(tj, self.config)]
        return sorted(chosen, key=lambda tj: (tj.metadata.creation_timestamp or "", name_of(tj)))


def parse_trainingjobs(items: Iterable[TrainingJob | Mapping[str, Any]]) -> list[TrainingJob]:
    """TrainingJobs as models, in order; listed JSON the model rejects is skipped (``parse_listed``)."""
    parsed: list[TrainingJob] = []
    for item in items:
        parsed += [item] if isinstance(item, TrainingJob) else parse_listed(TrainingJob, [item])
    return parsed


def _batch_job(job: BatchJob | Mapping[str, Any]) -> BatchJob:
    return job if isinstance(job, BatchJob) else BatchJob.parse(job)


# --- TrainingJob accessors --------------------------------------------------------------------
# Sources read one field of many optional parts; these give the empty part instead of None.

_NO_STATUS = TrainingJobStatus()
_NO_METRICS = TrainingMetrics()
_NO_EVALUATION = Evaluation()
_NO_BASELINE = BaselineComparison()


def name_of(tj: TrainingJob) -> str:
    return tj.metadata.name or ""


def uid_of(tj: TrainingJob) -> str:
    job_id = tj.status.job_id if tj.status else None
    return str(job_id) if job_id else tj.metadata.uid or ""


def status_of(tj: TrainingJob) -> TrainingJobStatus:
    return tj.status or _NO_STATUS


def metrics_of(tj: TrainingJob) -> TrainingMetrics:
    return status_of(tj).metrics or _NO_METRICS


def evaluation_of(tj: TrainingJob) -> Evaluation:
    return status_of(tj).evaluation or _NO_EVALUATION


def baseline_of(tj: TrainingJob) -> BaselineComparison:
    return evaluation_of(tj).baseline_comparison or _NO_BASELINE


def value_of(member: Enum | None) -> Any:
    """An enum field as the plain value the writers take (they do not know our enums)."""
    return None if member is None else member.value


def phase_of(tj: TrainingJob) -> str | None:
    return value_of(status_of(tj).phase)


def phase_or_queued(tj: TrainingJob) -> str:
    """The phase; a job the operator has not picked up yet is queued."""
    return phase_of(tj) or TrainingPhase.QUEUED.value


def budget_exceeded(tj: TrainingJob) -> bool:
    return status_of(tj).reason == TrainingReason.BUDGET_EXCEEDED


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def money(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _labels_match(tj: TrainingJob, cfg: ExportConfig) -> bool:
    flt = cfg.filters
    if flt is None:
        return True
    if flt.segments and tj.metadata.label(SEGMENT_LABEL) not in flt.segments:
        return False
    return not (flt.regions and tj.metadata.label(REGION_LABEL) not in flt.regions)


def _job_selected(tj: TrainingJob, cfg: ExportConfig) -> bool:
    flt = cfg.filters
    if cfg.date_range:
        created = parse_time(tj.metadata.creation_timestamp)
        if created is None or not cfg.date_range.start <= created <= cfg.date_range.end:
            return False
    if flt is None:
        return True
    phase = phase_of(tj)
    wanted = TrainingPhase.COMPLETED if flt.success else TrainingPhase.FAILED
    checks = [
        not flt.job_ids or bool({name_of(tj), uid_of(tj), tj.metadata.uid} & set(flt.job_ids)),
        not flt.agent_ids or tj.spec.agent_id in flt.agent_ids,
        flt.success is None or phase == wanted,
        flt.min_confidence is None or (metrics_of(tj).avg_reward or 0) >= flt.min_confidence,
        _labels_match(tj, cfg),
    ]
    return all(checks)


def duration(tj: TrainingJob) -> float | None:
    started, done = status_of(tj).started_at, status_of(tj).completed_at
    return (done - started).total_seconds() if started and done else None


def retries(ctx: SourceContext, tj: TrainingJob) -> int:
    job = ctx.trainer_jobs.get(name_of(tj))
    return job.failed if job is not None else 0


def last_condition(tj: TrainingJob) -> Condition | None:
    return max(status_of(tj).conditions or [], key=lambda c: c.last_transition_time, default=None)


Builder = Callable[["SourceContext"], Awaitable[Dataset]]


@dataclass(frozen=True)
class Source:
    """One export type: its dataset at each privacy level (what it reads from the cluster is in
    agentcore.api.exports: NEEDS_TRAININGJOBS, NEEDS_TRAINER_JOBS).

    Full and anonymized share the row builder: redaction, not the source, makes them differ.
    """

    rows: Builder
    aggregated: Builder
    summary: Builder

    def builder(self, level: PrivacyLevel) -> Builder:
        if level == PrivacyLevel.AGGREGATED:
            return self.aggregated
        if level == PrivacyLevel.SUMMARY:
            return self.summary
        return self.rows


def no_aggregated_form(kind: str) -> Builder:
    """The aggregated builder of a type whose rows each describe one agent or job: grouping them
    would leave groups of one, so the export is refused instead (k-anonymity, issue 12)."""

    async def refuse(ctx: SourceContext) -> Dataset:
        raise SourceError(
            f"{kind} has no aggregated form: each row describes a single agent or job; "
            "use privacy level anonymized or summary"
        )

    return refuse


# --- generic helpers -----------------------------------------------------------------------------

Getter = Callable[[TrainingJob, GroupStats], Any]
FieldSpec = tuple[Column, Getter]

SUMMARY_COLUMNS = (Column("metric", S, "metric.name"), Column("value", F, "metric.value"))


def summary_dataset(title: str, metrics: Iterable[tuple[str, Any]]) -> Dataset:
    rows: list[Row] = [(name, None if value is None else float(value)) for name, value in metrics]
    chart = ChartSpec(f"{title}: rates", "metric", "value", "bar", include=lambda m: str(m).endswith("rate"))
    return Dataset(title, SUMMARY_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


def table(
    title: str, specs: list[FieldSpec], items: list[tuple[TrainingJob, GroupStats]], chart: ChartSpec
) -> Dataset:
    columns = tuple(c for c, _ in specs)
    rows: list[Row] = [tuple(get(obj, stats) for _, get in specs) for obj, stats in items]
    return Dataset(title, columns, batched(rows), chart, estimated_rows=len(rows))


def mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


def sum_money(values: Iterable[Any]) -> Decimal:
    return sum((m for m in (money(v) for v in values) if m is not None), Decimal("0"))


def group(items: Iterable[ItemT], key: Callable[[ItemT], str]) -> dict[str, list[ItemT]]:
    groups: dict[str, list[ItemT]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


JOB_ID = Column("job_id", S, "job.id")
# pii: job names are built from agent ids (training.start_grpo), so they are pseudonymized too.
JOB_NAME = Column("job_name", S, "job.name", pii=True)
AGENT_ID = Column("agent_id", S, "agent.id", pii=True)


def evaluation_specs() -> list[FieldSpec]:
    return [
        (
            Column("eval_success_rate", F, "evaluation.success_rate"),
            lambda tj, s: evaluation_of(tj).success_rate,
        ),
        (
            Column("success_rate_improvement", F, "evaluation.success_rate_improvement"),
            lambda tj, s: baseline_of(tj).success_rate_improvement,
        ),
        (Column("p_value", F, "evaluation.p_value"), lambda tj, s: baseline_of(tj).p_value),
        (
            Column("significant", B, "evaluation.significant"),
            lambda tj, s: baseline_of(tj).statistically_significant,
        ),
        (
            Column("budget_exceeded", B, "job.budget_exceeded"),
            lambda tj, s: budget_exceeded(tj),
        ),
    ]


def persona_config_specs() -> list[FieldSpec]:
    return [
        (
            Column("learning_rate", F, "agent.config.learning_rate"),
            lambda tj, s: tj.spec.config.learning_rate,
        ),
        (Column("batch_size", N, "agent.config.batch_size"), lambda tj, s: tj.spec.config.batch_size),
        (
            Column("n_trajectories_per_query", N, "agent.config.n_trajectories_per_query"),
            lambda tj, s: tj.spec.config.n_trajectories_per_query,
        ),
        (
            Column("max_steps_per_trajectory", N, "agent.config.max_steps_per_trajectory"),
            lambda tj, s: tj.spec.config.max_steps_per_trajectory,
        ),
        (Column("beta", F, "agent.config.beta"), lambda tj, s: tj.spec.config.beta),
        (Column("loss_type", S, "agent.config.loss_type"), lambda tj, s: value_of(tj.spec.config.loss_type)),
        (
            Column("reward_functions", S, "agent.config.reward_functions"),
            lambda tj, s: ",".join(f.entry_point for f in tj.spec.config.reward_functions or []) or None,
        ),
    ]


async def job_stats(ctx: SourceContext) -> dict[str, GroupStats]:
    return await sql.stats_map(ctx.db, ctx.scope, Trajectory.job_id) if ctx.engine is not None else {}


async def trajectory_metrics(ctx: SourceContext) -> list[tuple[str, Any]]:
    """Totals over the selected trajectories: the trajectories and telemetry summaries share them."""
    t = await sql.one(ctx.db, sql.trajectory_totals(ctx.scope))
    count = int(t[0])
    iterations = (t[4] - t[3] + 1) if t[3] is not None else 0
    return [
        ("trajectories", count),
        ("jobs", t[1]),
        ("agents", t[2]),
        ("iterations", iterations),
        ("mean_reward", t[5]),
        ("success_rate", t[6]),
        ("mean_execution_time_ms", t[7]),
        ("error_rate", (t[8] or 0) / count if count else None),
    ]
