"""Audit log: the tenant's audit entries, per entry, per day or as totals."""

from __future__ import annotations

from agentcore.exports import sql
from agentcore.exports.schema import ChartSpec, Column, Dataset
from agentcore.exports.sources.base import (
    TS,
    J,
    N,
    S,
    Source,
    SourceContext,
    summary_dataset,
)

# --- audit log ----------------------------------------------------------------------------------------

AUDIT_COLUMNS = (
    Column("occurred_at", TS, "audit.occurred_at"),
    Column("actor", S, "actor.id", pii=True),
    Column("action", S, "audit.action"),
    Column("resource_kind", S, "resource.kind"),
    Column("resource_name", S, "resource.name", pii=True),  # job names: built from agent ids
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
    Column("entries", N, "audit.entries"),
    Column("actors", N, "audit.actors", group_size=True),  # k counts people, not entries
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


SOURCE = Source(rows=audit_rows, aggregated=audit_aggregated, summary=audit_summary)
