"""SQL for exports: filters from the ExportConfig as WHERE clauses, streaming selects, per-group stats.

Filters run in the database (never as a Python pass over all rows): namespace (the tenant),
date_range on created_at, filters.agent_ids, filters.job_ids (TrainingJob uid or name),
filters.min_confidence as a minimum reward, filters.success, and filters.segments/regions through
the TrainingJobs labelled with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, Select, String, Text, case, cast, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from agentcore.api.exports import ExportConfig
from agentcore.exports.schema import Batch
from agentcore.storage.tables import AuditEntry, Trajectory

DB_BATCH = 5_000
Query = Select[*tuple[Any, ...]]
T = Trajectory


@dataclass(frozen=True)
class Scope:
    """Which rows an export may read: the tenant's namespace plus the export's filters."""

    namespace: str
    config: ExportConfig
    labelled_job_ids: tuple[str, ...] | None = None  # segments/regions resolved to TrainingJob uids
    sqlite: bool = False

    def bound(self, stamp: dt.datetime) -> dt.datetime:
        stamp = stamp.astimezone(dt.UTC)
        # SQLite stores naive UTC text: compare like with like.
        return stamp.replace(tzinfo=None) if self.sqlite else stamp

    def trajectory_where(self) -> list[ColumnElement[bool]]:
        cfg, flt = self.config, self.config.filters
        clauses: list[ColumnElement[bool]] = [T.namespace == self.namespace]
        if cfg.date_range:
            clauses += [
                T.created_at >= self.bound(cfg.date_range.start),
                T.created_at <= self.bound(cfg.date_range.end),
            ]
        if flt is not None:
            if flt.agent_ids:
                clauses.append(T.agent_id.in_(flt.agent_ids))
            if flt.job_ids:
                clauses.append(or_(T.job_id.in_(flt.job_ids), T.job_name.in_(flt.job_ids)))
            if flt.min_confidence is not None:
                clauses.append(T.reward >= flt.min_confidence)
            if flt.success is not None:
                clauses.append(T.success.is_(flt.success))
        if self.labelled_job_ids is not None:
            clauses.append(T.job_id.in_(self.labelled_job_ids))
        return clauses

    def audit_where(self) -> list[ColumnElement[bool]]:
        a, cfg = AuditEntry, self.config
        clauses: list[ColumnElement[bool]] = [a.namespace == self.namespace]
        if cfg.date_range:
            clauses += [
                a.occurred_at >= self.bound(cfg.date_range.start),
                a.occurred_at <= self.bound(cfg.date_range.end),
            ]
        return clauses


async def stream(engine: AsyncEngine, stmt: Query, batch: int = DB_BATCH) -> AsyncIterator[Batch]:
    """Rows in batches through a server-side cursor (asyncpg) or SQLite's incremental fetch:
    memory holds one batch, whatever the result size."""
    async with engine.connect() as conn:
        result = await conn.stream(stmt.execution_options(yield_per=batch))
        async for part in result.partitions(batch):
            yield part


async def one(engine: AsyncEngine, stmt: Query) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).one()


async def all_rows(engine: AsyncEngine, stmt: Query) -> list[Any]:
    """For results bounded by the number of jobs/agents/nodes, not by the number of trajectories."""
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


def rate(flag: Any) -> ColumnElement[Any]:
    return cast(func.avg(case((flag, 1.0), else_=0.0)), Float)


def mean(column: Any) -> ColumnElement[Any]:
    return cast(func.avg(column), Float)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


# --- trajectories ------------------------------------------------------------------------------

TRAJECTORY_COLUMNS = (
    T.id,
    T.job_id,
    T.job_name,
    T.agent_id,
    T.iteration,
    T.group_index,
    T.sample_index,
    T.query,
    cast(T.steps, Text),  # JSON text as stored: no parse/serialise round trip per row
    T.reward,
    T.normalized_reward,
    T.advantage,
    T.success,
    T.execution_time_ms,
    T.error,
    T.created_at,
)


def trajectories(scope: Scope) -> Query:
    return select(*TRAJECTORY_COLUMNS).where(*scope.trajectory_where()).order_by(T.created_at, T.id)


def trajectory_size(scope: Scope) -> Query:
    """Row count and the average length of the variable-size columns, for size estimates."""
    return select(
        func.count(),
        mean(func.length(T.query)),
        mean(func.length(cast(T.steps, Text))),
        mean(func.length(func.coalesce(T.error, ""))),
        mean(func.length(T.job_name)),
        mean(func.length(T.agent_id)),
    ).where(*scope.trajectory_where())


def _bucket(resolution: int) -> ColumnElement[Any]:
    # A literal (validated int), not a bind parameter: GROUP BY must repeat the same expression.
    res: ColumnElement[int] = literal_column(str(int(resolution)), Integer)
    return (T.iteration // res) * res


def _bucket_stats() -> tuple[Any, ...]:
    """The per-bucket aggregates both telemetry forms report, in their column order."""
    return (
        func.count(),
        mean(T.reward),
        func.min(T.reward),
        func.max(T.reward),
        rate(T.success),
        mean(T.advantage),
        mean(T.execution_time_ms),
        count_if(T.error.is_not(None)),
        func.min(T.created_at),
        func.max(T.created_at),
    )


def telemetry(scope: Scope, resolution: int) -> Query:
    """Per-iteration aggregates, bucketed by `resolution` iterations, per job."""
    bucket = _bucket(resolution)
    return (
        select(
            T.job_id,
            T.job_name,
            T.agent_id,
            bucket.label("iteration_start"),
            func.max(T.iteration),
            *_bucket_stats(),
        )
        .where(*scope.trajectory_where())
        .group_by(T.job_id, T.job_name, T.agent_id, bucket)
        .order_by(T.job_id, bucket)
    )


def telemetry_across_agents(scope: Scope, resolution: int) -> Query:
    """The aggregated level's telemetry: one row per iteration bucket over every job, with the
    number of distinct agents behind it (k-anonymity counts subjects, not trajectories)."""
    bucket = _bucket(resolution)
    return (
        select(
            bucket.label("iteration_start"),
            func.max(T.iteration),
            func.count(func.distinct(T.agent_id)),
            func.count(func.distinct(T.job_id)),
            *_bucket_stats(),
        )
        .where(*scope.trajectory_where())
        .group_by(bucket)
        .order_by(bucket)
    )


def groups_of(query: Query) -> Query:
    """How many rows `query` returns (for size estimates)."""
    return select(func.count()).select_from(query.order_by(None).subquery())


def telemetry_groups(scope: Scope, resolution: int) -> Query:
    inner = telemetry(scope, resolution).order_by(None).subquery()
    return select(func.count()).select_from(inner)


def trajectory_totals(scope: Scope) -> Query:
    return select(
        func.count(),
        func.count(func.distinct(T.job_id)),
        func.count(func.distinct(T.agent_id)),
        func.min(T.iteration),
        func.max(T.iteration),
        mean(T.reward),
        rate(T.success),
        mean(T.execution_time_ms),
        count_if(T.error.is_not(None)),
    ).where(*scope.trajectory_where())


def stats_by(scope: Scope, key: Any) -> Query:
    """count, mean reward, success rate, errors, last iteration, per `key` (job_id or agent_id)."""
    return (
        select(
            key,
            func.count(),
            mean(T.reward),
            rate(T.success),
            count_if(T.error.is_not(None)),
            func.max(T.iteration),
        )
        .where(*scope.trajectory_where())
        .group_by(key)
    )


@dataclass(frozen=True)
class GroupStats:
    count: int = 0
    avg_reward: float | None = None
    success_rate: float | None = None
    errors: int = 0
    last_iteration: int | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None


async def stats_map(engine: AsyncEngine, scope: Scope, key: Any) -> dict[str, GroupStats]:
    rows = await all_rows(engine, stats_by(scope, key))
    return {str(r[0]): GroupStats(int(r[1]), r[2], r[3], int(r[4] or 0), r[5]) for r in rows}


def node_stats(scope: Scope, job_id: str, iteration: int, recent: int = 10) -> Query:
    """Stats of one job up to `iteration`, and over its last `recent` iterations up to it."""
    window = T.iteration > iteration - recent
    return select(
        func.count(),
        mean(T.reward),
        rate(T.success),
        cast(func.avg(case((window, T.reward))), Float),
        cast(func.avg(case((window, case((T.success, 1.0), else_=0.0)))), Float),
    ).where(*scope.trajectory_where(), T.job_id == job_id, T.iteration <= iteration)


# --- audit log ------------------------------------------------------------------------------------

A = AuditEntry
AUDIT_COLUMNS = (
    A.occurred_at,
    A.actor,
    A.action,
    A.resource_kind,
    A.resource_name,
    A.outcome,
    A.request_id,
    A.source_ip,
    cast(A.details, Text),
)


def audit_entries(scope: Scope) -> Query:
    return select(*AUDIT_COLUMNS).where(*scope.audit_where()).order_by(A.occurred_at, A.id)


def audit_size(scope: Scope) -> Query:
    return select(func.count(), mean(func.length(func.coalesce(cast(A.details, Text), "")))).where(
        *scope.audit_where()
    )


def audit_daily(scope: Scope) -> Query:
    day = cast(func.date(A.occurred_at), String)
    return (
        select(day, A.action, A.outcome, func.count(), func.count(func.distinct(A.actor)))
        .where(*scope.audit_where())
        .group_by(day, A.action, A.outcome)
        .order_by(day, A.action, A.outcome)
    )


def audit_totals(scope: Scope) -> Query:
    return select(
        func.count(),
        func.count(func.distinct(A.actor)),
        func.count(func.distinct(A.action)),
        count_if(A.outcome != "success"),
    ).where(*scope.audit_where())


def job_ids(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values)))
