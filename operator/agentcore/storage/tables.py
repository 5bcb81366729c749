"""Database tables (SQLAlchemy 2). Changes here need a migration under `migrations/versions`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Trajectory(Base):
    """One sampled trajectory of a training iteration, as `training.export_trajectories` returns it.

    The id is derived from (job, iteration, group, sample), so a trainer that redoes an iteration
    after a restart writes the same ids and the insert skips them: no duplicates.
    """

    __tablename__ = "trajectories"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36), nullable=False)
    job_name: Mapped[str] = mapped_column(String(253), nullable=False)
    namespace: Mapped[str] = mapped_column(String(63), nullable=False)
    agent_id: Mapped[str] = mapped_column(String(253), nullable=False)
    iteration: Mapped[int] = mapped_column(Integer, nullable=False)
    group_index: Mapped[int] = mapped_column(Integer, nullable=False)
    sample_index: Mapped[int] = mapped_column(Integer, nullable=False)
    query: Mapped[str] = mapped_column(Text, nullable=False)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    reward: Mapped[float] = mapped_column(Float, nullable=False)
    normalized_reward: Mapped[float] = mapped_column(Float, nullable=False)
    advantage: Mapped[float] = mapped_column(Float, nullable=False)
    success: Mapped[bool] = mapped_column(Boolean, nullable=False)
    execution_time_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (
        # Keyset pagination and the job filter: (job, created_at, id).
        Index("ix_trajectories_job_created_id", "job_id", "created_at", "id"),
        # success_only / min_reward filters within a job.
        Index("ix_trajectories_job_success_reward", "job_id", "success", "reward"),
        Index("ix_trajectories_namespace_agent", "namespace", "agent_id"),
    )


class AuditEntry(Base):
    """One API action (who did what, when, to which resource): the data of the audit_log export."""

    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    namespace: Mapped[str] = mapped_column(String(63), nullable=False)
    actor: Mapped[str] = mapped_column(String(253), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_kind: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_name: Mapped[str | None] = mapped_column(String(253), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    source_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_audit_log_namespace_occurred_id", "namespace", "occurred_at", "id"),)


class RateLimitState(Base):
    """The GCRA state of one (caller, bucket) when the API servers share their rate limits."""

    __tablename__ = "rate_limits"

    caller: Mapped[str] = mapped_column(String(300), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(128), primary_key=True)
    tat: Mapped[float] = mapped_column(Float(precision=53), nullable=False)

    __table_args__ = (Index("ix_rate_limits_tat", "tat"),)


class TrajectoryUsage(Base):
    """Trajectories stored per namespace: moved with every insert, in the same transaction, so the
    per-tenant cap holds across writers (the row lock serialises one namespace's inserts)."""

    __tablename__ = "trajectory_usage"

    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)
