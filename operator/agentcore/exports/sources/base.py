"""What every export source shares: the context it reads from, TrainingJob accessors, table and
summary helpers, and :class:`Source`, the builders of one export type per privacy level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from agentcore.api import labels
from agentcore.api.exports import ExportConfig, ExportJobSpec, PrivacyLevel
from agentcore.exports import sql
from agentcore.exports.schema import ChartSpec, Column, Dataset, Kind, Row, batched
from agentcore.exports.sql import GroupStats, Scope
from agentcore.storage.tables import Trajectory

Obj = dict[str, Any]
S, N, F, B, TS, D, J = (Kind.STRING, Kind.INT, Kind.FLOAT, Kind.BOOL, Kind.TIMESTAMP, Kind.DECIMAL, Kind.JSON)
SEGMENT_LABEL = labels.SEGMENT
REGION_LABEL = labels.REGION
TRAINER_JOB_LABEL = labels.TRAININGJOB


class SourceError(ValueError):
    """The export asks for something that does not exist (e.g. unknown node ids)."""


@dataclass
class SourceContext:
    namespace: str
    spec: ExportJobSpec
    engine: AsyncEngine | None
    trainingjobs: list[Obj] = field(default_factory=list)  # every TrainingJob of the namespace
    trainer_jobs: dict[str, Obj] = field(default_factory=dict)  # batch Jobs by TrainingJob name

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

    def jobs(self) -> list[Obj]:
        """The TrainingJobs the export's filters select, oldest first."""
        chosen = [tj for tj in self.trainingjobs if _job_selected(tj, self.config)]
        return sorted(chosen, key=lambda tj: (tj["metadata"].get("creationTimestamp", ""), name_of(tj)))


# --- TrainingJob accessors --------------------------------------------------------------------


def name_of(tj: Obj) -> str:
    return str(tj["metadata"]["name"])


def uid_of(tj: Obj) -> str:
    return str((tj.get("status") or {}).get("jobId") or tj["metadata"].get("uid", ""))


def status_of(tj: Obj) -> Obj:
    return tj.get("status") or {}


def metric(tj: Obj, key: str) -> Any:
    return (status_of(tj).get("metrics") or {}).get(key)


def evaluation(tj: Obj, key: str) -> Any:
    return (status_of(tj).get("evaluation") or {}).get(key)


def baseline(tj: Obj, key: str) -> Any:
    return ((status_of(tj).get("evaluation") or {}).get("baselineComparison") or {}).get(key)


def spec_config(tj: Obj, key: str) -> Any:
    return ((tj.get("spec") or {}).get("config") or {}).get(key)


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def money(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _labels_match(tj: Obj, cfg: ExportConfig) -> bool:
    flt = cfg.filters
    labels = tj["metadata"].get("labels") or {}
    if flt is None:
        return True
    if flt.segments and labels.get(SEGMENT_LABEL) not in flt.segments:
        return False
    return not (flt.regions and labels.get(REGION_LABEL) not in flt.regions)


def _job_selected(tj: Obj, cfg: ExportConfig) -> bool:
    flt = cfg.filters
    if cfg.date_range:
        created = parse_time(tj["metadata"].get("creationTimestamp"))
        if created is None or not cfg.date_range.start <= created <= cfg.date_range.end:
            return False
    if flt is None:
        return True
    phase = status_of(tj).get("phase")
    checks = [
        not flt.job_ids or bool({name_of(tj), uid_of(tj), tj["metadata"].get("uid")} & set(flt.job_ids)),
        not flt.agent_ids or (tj.get("spec") or {}).get("agentId") in flt.agent_ids,
        flt.success is None or phase == ("Completed" if flt.success else "Failed"),
        flt.min_confidence is None or (metric(tj, "avgReward") or 0) >= flt.min_confidence,
        _labels_match(tj, cfg),
    ]
    return all(checks)


def duration(tj: Obj) -> float | None:
    started, done = parse_time(status_of(tj).get("startedAt")), parse_time(status_of(tj).get("completedAt"))
    return (done - started).total_seconds() if started and done else None


def retries(ctx: SourceContext, tj: Obj) -> int:
    job = ctx.trainer_jobs.get(name_of(tj)) or {}
    return int((job.get("status") or {}).get("failed") or 0)


def last_condition(tj: Obj) -> Obj:
    conditions = status_of(tj).get("conditions") or []
    return max(conditions, key=lambda c: c.get("lastTransitionTime", ""), default={})


Builder = Callable[["SourceContext"], Awaitable[Dataset]]


@dataclass(frozen=True)
class Source:
    """One export type: its dataset at each privacy level, and what it reads from the cluster.

    Full and anonymized share the row builder: redaction, not the source, makes them differ.
    """

    rows: Builder
    aggregated: Builder
    summary: Builder
    needs_trainingjobs: bool = False  # reads the namespace's TrainingJobs
    needs_trainer_jobs: bool = False  # reads the TrainingJobs' batch Jobs too (retries)

    def builder(self, level: PrivacyLevel) -> Builder:
        if level == PrivacyLevel.AGGREGATED:
            return self.aggregated
        if level == PrivacyLevel.SUMMARY:
            return self.summary
        return self.rows


# --- generic helpers -----------------------------------------------------------------------------

Getter = Callable[[Obj, GroupStats], Any]
FieldSpec = tuple[Column, Getter]

SUMMARY_COLUMNS = (Column("metric", S, "metric.name"), Column("value", F, "metric.value"))


def summary_dataset(title: str, metrics: Iterable[tuple[str, Any]]) -> Dataset:
    rows: list[Row] = [(name, None if value is None else float(value)) for name, value in metrics]
    chart = ChartSpec(f"{title}: rates", "metric", "value", "bar", include=lambda m: str(m).endswith("rate"))
    return Dataset(title, SUMMARY_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


def table(
    title: str, specs: list[FieldSpec], items: list[tuple[Obj, GroupStats]], chart: ChartSpec
) -> Dataset:
    columns = tuple(c for c, _ in specs)
    rows: list[Row] = [tuple(get(obj, stats) for _, get in specs) for obj, stats in items]
    return Dataset(title, columns, batched(rows), chart, estimated_rows=len(rows))


def mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


def sum_money(values: Iterable[Any]) -> Decimal:
    return sum((m for m in (money(v) for v in values) if m is not None), Decimal("0"))


def group(items: Iterable[Obj], key: Callable[[Obj], str]) -> dict[str, list[Obj]]:
    groups: dict[str, list[Obj]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


JOB_ID = Column("job_id", S, "job.id")
JOB_NAME = Column("job_name", S, "job.name")
AGENT_ID = Column("agent_id", S, "agent.id", pii=True)


def evaluation_specs() -> list[FieldSpec]:
    return [
        (
            Column("eval_success_rate", F, "evaluation.success_rate"),
            lambda tj, s: evaluation(tj, "successRate"),
        ),
        (
            Column("success_rate_improvement", F, "evaluation.success_rate_improvement"),
            lambda tj, s: baseline(tj, "successRateImprovement"),
        ),
        (Column("p_value", F, "evaluation.p_value"), lambda tj, s: baseline(tj, "pValue")),
        (
            Column("significant", B, "evaluation.significant"),
            lambda tj, s: baseline(tj, "statisticallySignificant"),
        ),
        (
            Column("budget_exceeded", B, "job.budget_exceeded"),
            lambda tj, s: status_of(tj).get("reason") == "BudgetExceeded",
        ),
    ]


def persona_config_specs() -> list[FieldSpec]:
    return [
        (
            Column("learning_rate", F, "agent.config.learning_rate"),
            lambda tj, s: spec_config(tj, "learningRate"),
        ),
        (Column("batch_size", N, "agent.config.batch_size"), lambda tj, s: spec_config(tj, "batchSize")),
        (
            Column("n_trajectories_per_query", N, "agent.config.n_trajectories_per_query"),
            lambda tj, s: spec_config(tj, "nTrajectoriesPerQuery"),
        ),
        (
            Column("max_steps_per_trajectory", N, "agent.config.max_steps_per_trajectory"),
            lambda tj, s: spec_config(tj, "maxStepsPerTrajectory"),
        ),
        (Column("beta", F, "agent.config.beta"), lambda tj, s: spec_config(tj, "beta")),
        (Column("loss_type", S, "agent.config.loss_type"), lambda tj, s: spec_config(tj, "lossType")),
        (
            Column("reward_functions", S, "agent.config.reward_functions"),
            lambda tj, s: (
                ",".join(f.get("entryPoint", "") for f in spec_config(tj, "rewardFunctions") or []) or None
            ),
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
