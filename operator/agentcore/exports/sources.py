"""Datasets per export type and privacy level (the mapping is documented in ``agentcore.exports``).

Row data (trajectories, telemetry, audit entries) streams from the database in batches; per-job
and per-agent tables come from the namespace's TrainingJobs (bounded by the number of jobs) joined
with per-group aggregates computed in SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from agentcore.api import labels
from agentcore.api.exports import ExportConfig, ExportJobSpec, ExportType, PrivacyLevel
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
            labelled = sql.job_ids(_uid(tj) for tj in self.trainingjobs if _labels_match(tj, self.config))
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
        return sorted(chosen, key=lambda tj: (tj["metadata"].get("creationTimestamp", ""), _name(tj)))


# --- TrainingJob accessors --------------------------------------------------------------------


def _name(tj: Obj) -> str:
    return str(tj["metadata"]["name"])


def _uid(tj: Obj) -> str:
    return str((tj.get("status") or {}).get("jobId") or tj["metadata"].get("uid", ""))


def _status(tj: Obj) -> Obj:
    return tj.get("status") or {}


def _metric(tj: Obj, key: str) -> Any:
    return (_status(tj).get("metrics") or {}).get(key)


def _evaluation(tj: Obj, key: str) -> Any:
    return (_status(tj).get("evaluation") or {}).get(key)


def _baseline(tj: Obj, key: str) -> Any:
    return ((_status(tj).get("evaluation") or {}).get("baselineComparison") or {}).get(key)


def _config(tj: Obj, key: str) -> Any:
    return ((tj.get("spec") or {}).get("config") or {}).get(key)


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _money(value: Any) -> Decimal | None:
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
    phase = _status(tj).get("phase")
    checks = [
        not flt.job_ids or bool({_name(tj), _uid(tj), tj["metadata"].get("uid")} & set(flt.job_ids)),
        not flt.agent_ids or (tj.get("spec") or {}).get("agentId") in flt.agent_ids,
        flt.success is None or phase == ("Completed" if flt.success else "Failed"),
        flt.min_confidence is None or (_metric(tj, "avgReward") or 0) >= flt.min_confidence,
        _labels_match(tj, cfg),
    ]
    return all(checks)


def _duration(tj: Obj) -> float | None:
    started, done = parse_time(_status(tj).get("startedAt")), parse_time(_status(tj).get("completedAt"))
    return (done - started).total_seconds() if started and done else None


def _retries(ctx: SourceContext, tj: Obj) -> int:
    job = ctx.trainer_jobs.get(_name(tj)) or {}
    return int((job.get("status") or {}).get("failed") or 0)


def _last_condition(tj: Obj) -> Obj:
    conditions = _status(tj).get("conditions") or []
    return max(conditions, key=lambda c: c.get("lastTransitionTime", ""), default={})


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


def _mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None


def _sum_money(values: Iterable[Any]) -> Decimal:
    return sum((m for m in (_money(v) for v in values) if m is not None), Decimal("0"))


def _group(items: Iterable[Obj], key: Callable[[Obj], str]) -> dict[str, list[Obj]]:
    groups: dict[str, list[Obj]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


JOB_ID = Column("job_id", S, "job.id")
JOB_NAME = Column("job_name", S, "job.name")
AGENT_ID = Column("agent_id", S, "agent.id", pii=True)


# --- trajectories ----------------------------------------------------------------------------------

TRAJECTORY_COLUMNS = (
    Column("trajectory_id", S, "trajectory.id"),
    JOB_ID,
    JOB_NAME,
    AGENT_ID,
    Column("iteration", N, "trajectory.iteration"),
    Column("group_index", N, "trajectory.group_index"),
    Column("sample_index", N, "trajectory.sample_index"),
    Column("query", S, "trajectory.query", free_text=True),
    Column("steps", J, "trajectory.steps", free_text=True),
    Column("reward", F, "trajectory.reward"),
    Column("normalized_reward", F, "trajectory.normalized_reward"),
    Column("advantage", F, "trajectory.advantage"),
    Column("success", B, "trajectory.success"),
    Column("execution_time_ms", N, "trajectory.execution_time_ms"),
    Column("error", S, "trajectory.error", free_text=True),
    Column("created_at", TS, "trajectory.created_at"),
)


async def trajectory_rows(ctx: SourceContext) -> Dataset:
    scope = ctx.scope
    size = await sql.one(ctx.db, sql.trajectory_size(scope))
    column_bytes = {
        "trajectory_id": 36,
        "job_id": 36,
        "query": size[1] or 0,
        "steps": size[2] or 0,
        "error": size[3] or 0,
        "job_name": size[4] or 0,
        "agent_id": size[5] or 0,
    }
    return Dataset(
        "Trajectories",
        TRAJECTORY_COLUMNS,
        sql.stream(ctx.db, sql.trajectories(scope)),
        ChartSpec("Reward per iteration", "iteration", "reward"),
        estimated_rows=int(size[0]),
        column_bytes=column_bytes,
    )


async def trajectory_summary(ctx: SourceContext) -> Dataset:
    t = await sql.one(ctx.db, sql.trajectory_totals(ctx.scope))
    count = int(t[0])
    iterations = (t[4] - t[3] + 1) if t[3] is not None else 0
    return summary_dataset(
        "Trajectories summary",
        [
            ("trajectories", count),
            ("jobs", t[1]),
            ("agents", t[2]),
            ("iterations", iterations),
            ("mean_reward", t[5]),
            ("success_rate", t[6]),
            ("mean_execution_time_ms", t[7]),
            ("error_rate", (t[8] or 0) / count if count else None),
        ],
    )


# --- telemetry -------------------------------------------------------------------------------------

TELEMETRY_COLUMNS = (
    JOB_ID,
    JOB_NAME,
    AGENT_ID,
    Column("iteration_start", N, "telemetry.iteration_start"),
    Column("iteration_end", N, "telemetry.iteration_end"),
    Column("trajectories", N, "telemetry.trajectories", group_size=True),
    Column("avg_reward", F, "telemetry.avg_reward"),
    Column("min_reward", F, "telemetry.min_reward"),
    Column("max_reward", F, "telemetry.max_reward"),
    Column("success_rate", F, "telemetry.success_rate"),
    Column("avg_advantage", F, "telemetry.avg_advantage"),
    Column("avg_execution_time_ms", F, "telemetry.avg_execution_time_ms"),
    Column("errors", N, "telemetry.errors"),
    Column("first_at", TS, "telemetry.first_at"),
    Column("last_at", TS, "telemetry.last_at"),
)


async def telemetry_rows(ctx: SourceContext) -> Dataset:
    scope, res = ctx.scope, ctx.config.telemetry_resolution or 1
    groups = await sql.one(ctx.db, sql.telemetry_groups(scope, res))
    return Dataset(
        f"Telemetry (every {res} iterations)" if res > 1 else "Telemetry per iteration",
        TELEMETRY_COLUMNS,
        sql.stream(ctx.db, sql.telemetry(scope, res)),
        ChartSpec("Mean reward per iteration", "iteration_start", "avg_reward"),
        estimated_rows=int(groups[0]),
        column_bytes={"job_id": 36, "job_name": 24, "agent_id": 24},
    )


async def telemetry_summary(ctx: SourceContext) -> Dataset:
    res = ctx.config.telemetry_resolution or 1
    groups = await sql.one(ctx.db, sql.telemetry_groups(ctx.scope, res))
    summary = await trajectory_summary(ctx)
    rows = [r async for batch in summary.batches for r in batch]
    return summary_dataset(
        "Telemetry summary",
        [("telemetry_points", groups[0]), ("resolution", res), *[(r[0], r[1]) for r in rows]],
    )


# --- project summary --------------------------------------------------------------------------------


def _project_specs(cfg: ExportConfig) -> list[FieldSpec]:
    specs: list[FieldSpec] = [
        (JOB_ID, lambda tj, s: _uid(tj)),
        (JOB_NAME, lambda tj, s: _name(tj)),
        (AGENT_ID, lambda tj, s: (tj.get("spec") or {}).get("agentId")),
        (Column("phase", S, "job.phase"), lambda tj, s: _status(tj).get("phase")),
        (Column("reason", S, "job.reason"), lambda tj, s: _status(tj).get("reason")),
        (
            Column("created_by", S, "actor.id", pii=True),
            lambda tj, s: (tj["metadata"].get("annotations") or {}).get(labels.CREATED_BY),
        ),
        (
            Column("created_at", TS, "job.created_at"),
            lambda tj, s: parse_time(tj["metadata"].get("creationTimestamp")),
        ),
        (Column("started_at", TS, "job.started_at"), lambda tj, s: parse_time(_status(tj).get("startedAt"))),
        (
            Column("completed_at", TS, "job.completed_at"),
            lambda tj, s: parse_time(_status(tj).get("completedAt")),
        ),
        (Column("duration_seconds", F, "job.duration_seconds"), lambda tj, s: _duration(tj)),
        (
            Column("current_iteration", N, "job.current_iteration"),
            lambda tj, s: _status(tj).get("currentIteration"),
        ),
        (
            Column("total_iterations", N, "job.total_iterations"),
            lambda tj, s: _status(tj).get("totalIterations"),
        ),
        (
            Column("progress_percent", F, "job.progress_percent"),
            lambda tj, s: _status(tj).get("progressPercent"),
        ),
        (Column("cost_usd", D, "job.cost_usd"), lambda tj, s: _money(_status(tj).get("costUsd"))),
        (Column("budget_usd", D, "job.budget_usd"), lambda tj, s: _money(_status(tj).get("budgetUsd"))),
        (Column("train_loss", F, "job.train_loss"), lambda tj, s: _metric(tj, "trainLoss")),
        (Column("avg_reward", F, "job.avg_reward"), lambda tj, s: _metric(tj, "avgReward")),
        (Column("success_rate", F, "job.success_rate"), lambda tj, s: _metric(tj, "successRate")),
        (
            Column("trajectories_generated", N, "job.trajectories_generated"),
            lambda tj, s: _metric(tj, "trajectoriesGenerated"),
        ),
        (
            Column("checkpoints", N, "job.checkpoints"),
            lambda tj, s: len(_status(tj).get("checkpoints") or []),
        ),
        (Column("best_checkpoint_id", S, "checkpoint.id"), lambda tj, s: _status(tj).get("bestCheckpointId")),
    ]
    if cfg.include_telemetry:
        specs += [
            (Column("trajectories_stored", N, "telemetry.trajectories"), lambda tj, s: s.count),
            (Column("stored_avg_reward", F, "telemetry.avg_reward"), lambda tj, s: s.avg_reward),
            (Column("stored_success_rate", F, "telemetry.success_rate"), lambda tj, s: s.success_rate),
            (Column("last_iteration_stored", N, "telemetry.last_iteration"), lambda tj, s: s.last_iteration),
        ]
    if cfg.include_reliability:
        specs += _evaluation_specs()
    if cfg.include_personas:
        specs += _persona_config_specs()
    if cfg.include_events:
        specs += [
            (
                Column("last_condition", S, "job.condition.type"),
                lambda tj, s: _last_condition(tj).get("type"),
            ),
            (
                Column("last_condition_reason", S, "job.condition.reason"),
                lambda tj, s: _last_condition(tj).get("reason"),
            ),
            (
                Column("last_transition_at", TS, "job.condition.time"),
                lambda tj, s: parse_time(_last_condition(tj).get("lastTransitionTime")),
            ),
        ]
    return specs


def _evaluation_specs() -> list[FieldSpec]:
    return [
        (
            Column("eval_success_rate", F, "evaluation.success_rate"),
            lambda tj, s: _evaluation(tj, "successRate"),
        ),
        (
            Column("success_rate_improvement", F, "evaluation.success_rate_improvement"),
            lambda tj, s: _baseline(tj, "successRateImprovement"),
        ),
        (Column("p_value", F, "evaluation.p_value"), lambda tj, s: _baseline(tj, "pValue")),
        (
            Column("significant", B, "evaluation.significant"),
            lambda tj, s: _baseline(tj, "statisticallySignificant"),
        ),
        (
            Column("budget_exceeded", B, "job.budget_exceeded"),
            lambda tj, s: _status(tj).get("reason") == "BudgetExceeded",
        ),
    ]


def _persona_config_specs() -> list[FieldSpec]:
    return [
        (Column("learning_rate", F, "agent.config.learning_rate"), lambda tj, s: _config(tj, "learningRate")),
        (Column("batch_size", N, "agent.config.batch_size"), lambda tj, s: _config(tj, "batchSize")),
        (
            Column("n_trajectories_per_query", N, "agent.config.n_trajectories_per_query"),
            lambda tj, s: _config(tj, "nTrajectoriesPerQuery"),
        ),
        (
            Column("max_steps_per_trajectory", N, "agent.config.max_steps_per_trajectory"),
            lambda tj, s: _config(tj, "maxStepsPerTrajectory"),
        ),
        (Column("beta", F, "agent.config.beta"), lambda tj, s: _config(tj, "beta")),
        (Column("loss_type", S, "agent.config.loss_type"), lambda tj, s: _config(tj, "lossType")),
        (
            Column("reward_functions", S, "agent.config.reward_functions"),
            lambda tj, s: (
                ",".join(f.get("entryPoint", "") for f in _config(tj, "rewardFunctions") or []) or None
            ),
        ),
    ]


async def _job_stats(ctx: SourceContext) -> dict[str, GroupStats]:
    return await sql.stats_map(ctx.db, ctx.scope, Trajectory.job_id) if ctx.engine is not None else {}


async def project_rows(ctx: SourceContext) -> Dataset:
    stats = await _job_stats(ctx) if ctx.config.include_telemetry else {}
    items = [(tj, stats.get(_uid(tj), GroupStats())) for tj in ctx.jobs()]
    chart = ChartSpec("Mean reward per job", "job_name", "avg_reward", "bar")
    return table("Project summary", _project_specs(ctx.config), items, chart)


PHASE_COLUMNS = (
    Column("phase", S, "job.phase"),
    Column("jobs", N, "job.count", group_size=True),
    Column("total_cost_usd", D, "job.cost_usd"),
    Column("total_budget_usd", D, "job.budget_usd"),
    Column("mean_progress_percent", F, "job.progress_percent"),
    Column("mean_avg_reward", F, "job.avg_reward"),
    Column("mean_success_rate", F, "job.success_rate"),
    Column("trajectories_generated", N, "job.trajectories_generated"),
)


async def project_aggregated(ctx: SourceContext) -> Dataset:
    groups = _group(ctx.jobs(), lambda tj: _status(tj).get("phase") or "Queued")
    rows: list[Row] = [
        (
            phase,
            len(jobs),
            _sum_money(_status(tj).get("costUsd") for tj in jobs),
            _sum_money(_status(tj).get("budgetUsd") for tj in jobs),
            _mean(_status(tj).get("progressPercent") for tj in jobs),
            _mean(_metric(tj, "avgReward") for tj in jobs),
            _mean(_metric(tj, "successRate") for tj in jobs),
            sum(int(_metric(tj, "trajectoriesGenerated") or 0) for tj in jobs),
        )
        for phase, jobs in sorted(groups.items())
    ]
    chart = ChartSpec("Jobs per phase", "phase", "jobs", "bar")
    return Dataset("Project summary by phase", PHASE_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def project_summary(ctx: SourceContext) -> Dataset:
    jobs = ctx.jobs()
    phases = [(_status(tj).get("phase") or "Queued") for tj in jobs]
    done = sum(p in ("Completed", "Failed", "Cancelled") for p in phases)
    return summary_dataset(
        "Project summary",
        [
            ("jobs", len(jobs)),
            *[
                (f"jobs_{p.lower()}", phases.count(p))
                for p in ("Queued", "Running", "Completed", "Failed", "Cancelled")
            ],
            ("total_cost_usd", _sum_money(_status(tj).get("costUsd") for tj in jobs)),
            ("total_budget_usd", _sum_money(_status(tj).get("budgetUsd") for tj in jobs)),
            ("trajectories_generated", sum(int(_metric(tj, "trajectoriesGenerated") or 0) for tj in jobs)),
            ("mean_avg_reward", _mean(_metric(tj, "avgReward") for tj in jobs)),
            ("mean_success_rate", _mean(_metric(tj, "successRate") for tj in jobs)),
            ("completion_rate", phases.count("Completed") / done if done else None),
        ],
    )


# --- node comparison ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    node_id: str
    kind: str  # "job" or "checkpoint"
    tj: Obj
    iteration: int | None
    validation_score: float | None


def resolve_nodes(jobs: list[Obj], node_ids: list[str] | None) -> list[Node]:
    """node_ids name TrainingJobs (name or uid) or checkpoints (id, or "<job>/<checkpoint id>");
    none means every selected job. Unknown ids are an error, not silently empty rows."""
    if not node_ids:
        return [_job_node(tj, _name(tj)) for tj in jobs]
    nodes, unknown = [], []
    for node_id in node_ids:
        node = _find_node(jobs, node_id)
        if node is None:
            unknown.append(node_id)
        else:
            nodes.append(node)
    if unknown:
        raise SourceError(
            f"unknown node_ids (TrainingJob names, uids or checkpoint ids): {', '.join(unknown)}"
        )
    return nodes


def _job_node(tj: Obj, node_id: str) -> Node:
    return Node(node_id, "job", tj, _status(tj).get("currentIteration"), _metric(tj, "validationAccuracy"))


def _find_node(jobs: list[Obj], node_id: str) -> Node | None:
    job_part, _, ckpt_part = node_id.partition("/")
    for tj in jobs:
        if node_id in (_name(tj), _uid(tj), tj["metadata"].get("uid")):
            return _job_node(tj, node_id)
        if ckpt_part and job_part != _name(tj):
            continue
        for ckpt in _status(tj).get("checkpoints") or []:
            if ckpt.get("id") in (node_id, ckpt_part):
                return Node(node_id, "checkpoint", tj, ckpt.get("iteration"), ckpt.get("validationScore"))
    return None


NODE_COLUMNS = (
    Column("node_id", S, "node.id"),
    Column("node_kind", S, "node.kind"),
    JOB_NAME,
    AGENT_ID,
    Column("phase", S, "job.phase"),
    Column("iteration", N, "node.iteration"),
    Column("validation_score", F, "node.validation_score"),
    Column("cost_usd", D, "job.cost_usd"),
    Column("trajectories", N, "node.trajectories", group_size=True),
    Column("avg_reward", F, "node.avg_reward"),
    Column("success_rate", F, "node.success_rate"),
    Column("recent_avg_reward", F, "node.recent_avg_reward"),
    Column("recent_success_rate", F, "node.recent_success_rate"),
)


async def _node_row(ctx: SourceContext, node: Node, last: dict[str, GroupStats]) -> Row:
    iteration = (
        node.iteration if node.iteration is not None else last.get(_uid(node.tj), GroupStats()).last_iteration
    )
    stats: Any = (0, None, None, None, None)
    if iteration is not None:
        stats = await sql.one(ctx.db, sql.node_stats(ctx.scope, _uid(node.tj), int(iteration)))
    return (
        node.node_id,
        node.kind,
        _name(node.tj),
        (node.tj.get("spec") or {}).get("agentId"),
        _status(node.tj).get("phase"),
        iteration,
        node.validation_score,
        _money(_status(node.tj).get("costUsd")) if node.kind == "job" else None,
        int(stats[0]),
        stats[1],
        stats[2],
        stats[3],
        stats[4],
    )


async def node_rows(ctx: SourceContext) -> Dataset:
    nodes = resolve_nodes(ctx.jobs(), ctx.config.node_ids)
    last = await _job_stats(ctx)
    rows = [await _node_row(ctx, node, last) for node in nodes]
    chart = ChartSpec("Mean reward per node", "node_id", "avg_reward", "bar")
    return Dataset("Node comparison", NODE_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def node_summary(ctx: SourceContext) -> Dataset:
    data = await node_rows(ctx)
    rows = [r async for batch in data.batches for r in batch]
    rewards = [r[9] for r in rows if r[9] is not None]
    rates = [r[10] for r in rows if r[10] is not None]
    return summary_dataset(
        "Node comparison summary",
        [
            ("nodes_compared", len(rows)),
            ("max_avg_reward", max(rewards, default=None)),
            ("min_avg_reward", min(rewards, default=None)),
            ("avg_reward_spread", (max(rewards) - min(rewards)) if rewards else None),
            ("max_success_rate", max(rates, default=None)),
            ("min_success_rate", min(rates, default=None)),
        ],
    )


# --- persona (agent) catalog -----------------------------------------------------------------------

PERSONA_COLUMNS = (
    AGENT_ID,
    Column("jobs", N, "agent.jobs"),
    Column("latest_job", S, "job.name"),
    Column("latest_phase", S, "job.phase"),
    *(c for c, _ in _persona_config_specs()),
    Column("trajectories", N, "agent.trajectories", group_size=True),
    Column("avg_reward", F, "agent.avg_reward"),
    Column("success_rate", F, "agent.success_rate"),
    Column("first_seen", TS, "agent.first_seen"),
    Column("last_seen", TS, "agent.last_seen"),
)


async def persona_rows(ctx: SourceContext) -> Dataset:
    by_agent = _group(ctx.jobs(), lambda tj: str((tj.get("spec") or {}).get("agentId") or ""))
    stats = await sql.stats_map(ctx.db, ctx.scope, Trajectory.agent_id) if ctx.engine is not None else {}
    config_getters = [get for _, get in _persona_config_specs()]
    rows: list[Row] = []
    for agent in sorted(set(by_agent) | set(stats)):
        jobs = by_agent.get(agent, [])
        latest = jobs[-1] if jobs else None
        s = stats.get(agent, GroupStats())
        created = [parse_time(tj["metadata"].get("creationTimestamp")) for tj in jobs]
        rows.append(
            (
                agent,
                len(jobs),
                _name(latest) if latest else None,
                _status(latest).get("phase") if latest else None,
                *(get(latest, s) if latest else None for get in config_getters),
                s.count,
                s.avg_reward,
                s.success_rate,
                min((c for c in created if c), default=None),
                max((c for c in created if c), default=None),
            )
        )
    chart = ChartSpec("Mean reward per agent", "agent_id", "avg_reward", "bar")
    return Dataset("Agent catalog", PERSONA_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def persona_summary(ctx: SourceContext) -> Dataset:
    data = await persona_rows(ctx)
    rows = [r async for batch in data.batches for r in batch]
    n_traj = sum(int(r[-5] or 0) for r in rows)
    return summary_dataset(
        "Agent catalog summary",
        [
            ("agents", len(rows)),
            ("jobs", sum(int(r[1]) for r in rows)),
            ("trajectories", n_traj),
            ("mean_avg_reward", _mean(r[-4] for r in rows)),
            ("mean_success_rate", _mean(r[-3] for r in rows)),
        ],
    )


# --- reliability --------------------------------------------------------------------------------------


def _reliability_specs(ctx: SourceContext) -> list[FieldSpec]:
    return [
        (JOB_ID, lambda tj, s: _uid(tj)),
        (JOB_NAME, lambda tj, s: _name(tj)),
        (AGENT_ID, lambda tj, s: (tj.get("spec") or {}).get("agentId")),
        (Column("phase", S, "job.phase"), lambda tj, s: _status(tj).get("phase")),
        (Column("reason", S, "job.reason"), lambda tj, s: _status(tj).get("reason")),
        (
            Column("trainer_state", S, "job.trainer_state"),
            lambda tj, s: (_status(tj).get("trainer") or {}).get("state"),
        ),
        (
            Column("message", S, "job.message", free_text=True),
            lambda tj, s: _status(tj).get("message") or (_status(tj).get("trainer") or {}).get("message"),
        ),
        (Column("retries", N, "job.retries"), lambda tj, s: _retries(ctx, tj)),
        (Column("cancelled", B, "job.cancelled"), lambda tj, s: _status(tj).get("phase") == "Cancelled"),
        (
            Column("budget_remaining_percent", F, "job.budget_remaining_percent"),
            lambda tj, s: _status(tj).get("budgetRemainingPercent"),
        ),
        (Column("cost_usd", D, "job.cost_usd"), lambda tj, s: _money(_status(tj).get("costUsd"))),
        (Column("trajectories", N, "telemetry.trajectories"), lambda tj, s: s.count),
        (Column("error_trajectories", N, "telemetry.errors"), lambda tj, s: s.errors),
        (Column("error_rate", F, "telemetry.error_rate"), lambda tj, s: s.error_rate),
        *_evaluation_specs(),
    ]


async def reliability_rows(ctx: SourceContext) -> Dataset:
    stats = await _job_stats(ctx)
    items = [(tj, stats.get(_uid(tj), GroupStats())) for tj in ctx.jobs()]
    chart = ChartSpec("Trajectory error rate per job", "job_name", "error_rate", "bar")
    return table("Reliability report", _reliability_specs(ctx), items, chart)


OUTCOME_COLUMNS = (
    Column("outcome", S, "job.outcome"),
    Column("jobs", N, "job.count", group_size=True),
    Column("retries", N, "job.retries"),
    Column("budget_stops", N, "job.budget_stops"),
    Column("error_trajectories", N, "telemetry.errors"),
    Column("error_rate", F, "telemetry.error_rate"),
    Column("significant_improvements", N, "evaluation.significant"),
    Column("mean_p_value", F, "evaluation.p_value"),
)


def _outcome(tj: Obj) -> str:
    phase = _status(tj).get("phase") or "Queued"
    reason = _status(tj).get("reason")
    return f"{phase}/{reason}" if reason and reason != phase else phase


async def reliability_aggregated(ctx: SourceContext) -> Dataset:
    stats = await _job_stats(ctx)
    rows: list[Row] = []
    for outcome, jobs in sorted(_group(ctx.jobs(), _outcome).items()):
        s = [stats.get(_uid(tj), GroupStats()) for tj in jobs]
        total, errors = sum(x.count for x in s), sum(x.errors for x in s)
        rows.append(
            (
                outcome,
                len(jobs),
                sum(_retries(ctx, tj) for tj in jobs),
                sum(_status(tj).get("reason") == "BudgetExceeded" for tj in jobs),
                errors,
                errors / total if total else None,
                sum(bool(_baseline(tj, "statisticallySignificant")) for tj in jobs),
                _mean(_baseline(tj, "pValue") for tj in jobs),
            )
        )
    chart = ChartSpec("Jobs per outcome", "outcome", "jobs", "bar")
    return Dataset("Reliability by outcome", OUTCOME_COLUMNS, batched(rows), chart, estimated_rows=len(rows))


async def reliability_summary(ctx: SourceContext) -> Dataset:
    jobs, stats = ctx.jobs(), await _job_stats(ctx)
    phases = [_status(tj).get("phase") for tj in jobs]
    done = sum(p in ("Completed", "Failed", "Cancelled") for p in phases)
    s = [stats.get(_uid(tj), GroupStats()) for tj in jobs]
    total = sum(x.count for x in s)
    return summary_dataset(
        "Reliability summary",
        [
            ("jobs", len(jobs)),
            ("jobs_failed", phases.count("Failed")),
            ("jobs_cancelled", phases.count("Cancelled")),
            ("budget_stops", sum(_status(tj).get("reason") == "BudgetExceeded" for tj in jobs)),
            ("retries", sum(_retries(ctx, tj) for tj in jobs)),
            ("failure_rate", phases.count("Failed") / done if done else None),
            ("error_rate", sum(x.errors for x in s) / total if total else None),
            ("significant_improvements", sum(bool(_baseline(tj, "statisticallySignificant")) for tj in jobs)),
            ("mean_p_value", _mean(_baseline(tj, "pValue") for tj in jobs)),
        ],
    )


# --- audit log ----------------------------------------------------------------------------------------

AUDIT_COLUMNS = (
    Column("occurred_at", TS, "audit.occurred_at"),
    Column("actor", S, "actor.id", pii=True),
    Column("action", S, "audit.action"),
    Column("resource_kind", S, "resource.kind"),
    Column("resource_name", S, "resource.name"),
    Column("outcome", S, "audit.outcome"),
    Column("request_id", S, "request.id"),
    Column("source_ip", S, "actor.ip", pii=True),
    Column("details", J, "audit.details", free_text=True),
)


async def audit_rows(ctx: SourceContext) -> Dataset:
    size = await sql.one(ctx.db, sql.audit_size(ctx.scope))
    return Dataset(
        "Audit log",
        AUDIT_COLUMNS,
        sql.stream(ctx.db, sql.audit_entries(ctx.scope)),
        ChartSpec("Audit entries per action", "action", "action", "bar", count=True),
        estimated_rows=int(size[0]),
        column_bytes={"details": size[1] or 0, "actor": 24, "resource_name": 40, "request_id": 36},
    )


AUDIT_DAILY_COLUMNS = (
    Column("day", S, "audit.day"),
    Column("action", S, "audit.action"),
    Column("outcome", S, "audit.outcome"),
    Column("entries", N, "audit.entries", group_size=True),
    Column("actors", N, "audit.actors"),
)


async def audit_aggregated(ctx: SourceContext) -> Dataset:
    return Dataset(
        "Audit log per day",
        AUDIT_DAILY_COLUMNS,
        sql.stream(ctx.db, sql.audit_daily(ctx.scope)),
        ChartSpec("Audit entries per action", "action", "entries", "bar"),
    )


async def audit_summary(ctx: SourceContext) -> Dataset:
    t = await sql.one(ctx.db, sql.audit_totals(ctx.scope))
    count = int(t[0])
    return summary_dataset(
        "Audit log summary",
        [
            ("entries", count),
            ("distinct_actors", t[1]),
            ("distinct_actions", t[2]),
            ("denied_or_failed", t[3] or 0),
            ("denied_or_failed_rate", (t[3] or 0) / count if count else None),
        ],
    )


# --- the mapping ---------------------------------------------------------------------------------------

Builder = Callable[[SourceContext], Awaitable[Dataset]]

BUILDERS: dict[ExportType, dict[PrivacyLevel, Builder]] = {
    ExportType.TRAJECTORIES: {
        PrivacyLevel.FULL: trajectory_rows,
        PrivacyLevel.ANONYMIZED: trajectory_rows,
        PrivacyLevel.AGGREGATED: telemetry_rows,
        PrivacyLevel.SUMMARY: trajectory_summary,
    },
    ExportType.TELEMETRY_DUMP: {
        PrivacyLevel.FULL: telemetry_rows,
        PrivacyLevel.ANONYMIZED: telemetry_rows,
        PrivacyLevel.AGGREGATED: telemetry_rows,
        PrivacyLevel.SUMMARY: telemetry_summary,
    },
    ExportType.PROJECT_SUMMARY: {
        PrivacyLevel.FULL: project_rows,
        PrivacyLevel.ANONYMIZED: project_rows,
        PrivacyLevel.AGGREGATED: project_aggregated,
        PrivacyLevel.SUMMARY: project_summary,
    },
    ExportType.NODE_COMPARISON: {
        PrivacyLevel.FULL: node_rows,
        PrivacyLevel.ANONYMIZED: node_rows,
        PrivacyLevel.AGGREGATED: node_rows,
        PrivacyLevel.SUMMARY: node_summary,
    },
    ExportType.PERSONA_CATALOG: {
        PrivacyLevel.FULL: persona_rows,
        PrivacyLevel.ANONYMIZED: persona_rows,
        PrivacyLevel.AGGREGATED: persona_rows,
        PrivacyLevel.SUMMARY: persona_summary,
    },
    ExportType.RELIABILITY_REPORT: {
        PrivacyLevel.FULL: reliability_rows,
        PrivacyLevel.ANONYMIZED: reliability_rows,
        PrivacyLevel.AGGREGATED: reliability_aggregated,
        PrivacyLevel.SUMMARY: reliability_summary,
    },
    ExportType.AUDIT_LOG: {
        PrivacyLevel.FULL: audit_rows,
        PrivacyLevel.ANONYMIZED: audit_rows,
        PrivacyLevel.AGGREGATED: audit_aggregated,
        PrivacyLevel.SUMMARY: audit_summary,
    },
}

NEEDS_TRAININGJOBS = frozenset(
    {
        ExportType.PROJECT_SUMMARY,
        ExportType.NODE_COMPARISON,
        ExportType.PERSONA_CATALOG,
        ExportType.RELIABILITY_REPORT,
    }
)
NEEDS_TRAINER_JOBS = frozenset({ExportType.RELIABILITY_REPORT})


async def build_dataset(ctx: SourceContext) -> Dataset:
    return await BUILDERS[ctx.spec.export_type][ctx.config.privacy_level](ctx)
