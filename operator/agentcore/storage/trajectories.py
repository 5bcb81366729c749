"""Trajectory persistence: idempotent batch inserts and stable, keyset-paginated reads."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentcore.storage.tables import Trajectory, TrajectoryUsage

_ROWS_PER_STATEMENT = 1000
_ID_NAMESPACE = uuid.UUID("6b1d3c52-7f0e-4c8e-9a57-0c1f2b9d4e10")


def trajectory_id(job_id: str, iteration: int, group: int, sample: int) -> str:
    """Deterministic: redoing an iteration after a restart yields the same ids."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{job_id}/{iteration}/{group}/{sample}"))


@dataclass(frozen=True)
class TrajectoryFilter:
    job_id: str
    success_only: bool = False
    min_reward: float | None = None

    def where(self) -> list[Any]:
        clauses: list[Any] = [Trajectory.job_id == self.job_id]
        if self.success_only:
            clauses.append(Trajectory.success.is_(True))
        if self.min_reward is not None:
            clauses.append(Trajectory.reward >= self.min_reward)
        return clauses


@dataclass(frozen=True)
class Page:
    rows: list[Trajectory]
    total_count: int
    has_more: bool
    next_cursor: str | None


def encode_cursor(row: Trajectory) -> str:
    raw = json.dumps([row.created_at.isoformat(), row.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Raises ValueError for anything that is not a cursor this module made."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, ident = json.loads(base64.urlsafe_b64decode(padded))
        return dt.datetime.fromisoformat(created), str(ident)
    except Exception as exc:
        raise ValueError("cursor is not valid") from exc


async def _insert_new(session: AsyncSession, insert: Any, rows: list[dict[str, Any]]) -> int:
    inserted = 0
    # One statement binds every column of every row: stay under asyncpg's 32,767 parameters.
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        stmt = insert(Trajectory).values(chunk).on_conflict_do_nothing(index_elements=["id"])
        result = await session.execute(stmt)
        inserted += int(getattr(result, "rowcount", 0) or 0)
    return inserted


class TrajectoryQuotaExceeded(Exception):
    """A batch would take its namespace past the stored-trajectory cap; nothing of it was stored."""

    def __init__(self, namespace: str, limit: int, stored: int, adding: int) -> None:
        super().__init__(
            f"namespace {namespace!r} may store at most {limit} trajectories "
            f"({stored} stored, this batch adds {adding}); nothing of the batch was stored"
        )
        self.namespace, self.limit, self.stored, self.adding = namespace, limit, stored, adding


class TrajectoryRepository:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], max_per_namespace: int | None = None
    ) -> None:
        self.sessions = sessions
        self.max_per_namespace = max_per_namespace  # None: no cap

    async def add_batch(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert, skipping ids already stored; returns how many were new.

        All or nothing: past the namespace's cap the transaction rolls back and
        `TrajectoryQuotaExceeded` says so."""
        if not rows:
            return 0
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_namespace.setdefault(row["namespace"], []).append(row)
        inserted = 0
        async with self.sessions() as session, session.begin():
            dialect = session.bind.dialect.name if session.bind else "postgresql"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            for namespace, group in by_namespace.items():
                new = await _insert_new(session, insert, group)
                await self._count(session, insert, namespace, new)
                inserted += new
        return inserted

    async def _count(self, session: AsyncSession, insert: Any, namespace: str, new: int) -> None:
        """Move the namespace's counter by the rows really inserted (retries add nothing)."""
        if new == 0:
            return
        stmt = insert(TrajectoryUsage).values(namespace=namespace, rows=new)
        stmt = stmt.on_conflict_do_update(
            index_elements=["namespace"], set_={"rows": TrajectoryUsage.rows + new}
        ).returning(TrajectoryUsage.rows)
        total = int((await session.execute(stmt)).scalar_one())
        if self.max_per_namespace is not None and total > self.max_per_namespace:
            raise TrajectoryQuotaExceeded(namespace, self.max_per_namespace, total - new, new)

    async def stored_in(self, namespace: str) -> int:
        async with self.sessions() as session:
            stmt = select(TrajectoryUsage.rows).where(TrajectoryUsage.namespace == namespace)
            return int((await session.execute(stmt)).scalar_one_or_none() or 0)

    async def count(self, flt: TrajectoryFilter) -> int:
        async with self.sessions() as session:
            stmt = select(func.count()).select_from(Trajectory).where(*flt.where())
            return int((await session.execute(stmt)).scalar_one())

    async def page(
        self, flt: TrajectoryFilter, limit: int, offset: int = 0, cursor: str | None = None
    ) -> Page:
        stmt = self._ordered(flt)
        if cursor:
            created, ident = decode_cursor(cursor)
            stmt = stmt.where(_after(created, ident))
        elif offset:
            stmt = stmt.offset(offset)
        async with self.sessions() as session:
            rows = list((await session.execute(stmt.limit(limit + 1))).scalars())
        total = await self.count(flt)
        has_more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]) if has_more and rows else None
        return Page(rows, total, has_more, next_cursor)

    async def stream(self, flt: TrajectoryFilter, batch: int = 1000) -> AsyncIterator[Trajectory]:
        """Every matching row in order, with bounded memory (keyset batches)."""
        after: tuple[dt.datetime, str] | None = None
        while True:
            stmt = self._ordered(flt)
            if after:
                stmt = stmt.where(_after(*after))
            async with self.sessions() as session:
                rows = list((await session.execute(stmt.limit(batch))).scalars())
            for row in rows:
                yield row
            if len(rows) < batch:
                return
            after = (rows[-1].created_at, rows[-1].id)

    async def ids_for_job(self, job_id: str) -> list[str]:
        async with self.sessions() as session:
            stmt = select(Trajectory.id).where(Trajectory.job_id == job_id)
            return list((await session.execute(stmt)).scalars())

    @staticmethod
    def _ordered(flt: TrajectoryFilter) -> Select[Trajectory]:
        return select(Trajectory).where(*flt.where()).order_by(Trajectory.created_at, Trajectory.id)


def _after(created: dt.datetime, ident: str) -> Any:
    # Spelled out rather than a row-value comparison so SQLite and PostgreSQL plan it alike.
    return or_(Trajectory.created_at > created, and_(Trajectory.created_at == created, Trajectory.id > ident))


def as_utc(stamp: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


def to_api(row: Trajectory) -> dict[str, Any]:
    """The shape `training.export_trajectories` returns for one trajectory."""
    return {
        "trajectory_id": row.id,
        "job_id": row.job_id,
        "agent_id": row.agent_id,
        "iteration": row.iteration,
        "query": row.query,
        "steps": row.steps,
        "reward": row.reward,
        "normalized_reward": row.normalized_reward,
        "advantage": row.advantage,
        "success": row.success,
        "execution_time_ms": row.execution_time_ms,
        "created_at": as_utc(row.created_at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
