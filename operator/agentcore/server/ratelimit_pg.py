"""A :class:`RateLimitStore` in PostgreSQL, so that every API server replica counts against the
same limits (the ``rate_limits`` table, migration 0003).

GCRA's step is one statement: the upsert moves the TAT only when the request conforms, and the
row lock of ``ON CONFLICT DO UPDATE`` serialises concurrent requests of one key, so two replicas
cannot both spend the last slot. The TAT as found (for a refusal's retry-after) comes from the
same statement's snapshot.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine

from agentcore.server.ratelimit import SLACK_SECONDS, RateLimit, Step

# GCRA's condition TAT' - window <= now + slack, with TAT' = max(TAT, now) + interval, is
# TAT <= now + slack + window - interval (``max_tat``, computed in Python; window >= interval).
# Parameters are cast: asyncpg prepares the statement and cannot infer the types otherwise.
ADVANCE_SQL: TextClause = text(
    """
WITH found AS (
  SELECT tat FROM rate_limits WHERE caller = :caller AND bucket = :bucket
), stored AS (
  INSERT INTO rate_limits AS r (caller, bucket, tat)
  VALUES (:caller, :bucket, CAST(:fresh_tat AS double precision))
  ON CONFLICT (caller, bucket) DO UPDATE
    SET tat = GREATEST(r.tat, CAST(:now AS double precision)) + CAST(:interval AS double precision)
    WHERE r.tat <= CAST(:max_tat AS double precision)
  RETURNING r.tat
)
SELECT (SELECT tat FROM stored) AS stored_tat, (SELECT tat FROM found) AS found_tat
"""
)

# Rows whose TAT has passed are full buckets: dropping them changes no decision.
PRUNE_SQL: TextClause = text("DELETE FROM rate_limits WHERE tat < CAST(:now AS double precision)")


def advance_params(caller: str, bucket: str, rate: RateLimit, now: float) -> dict[str, Any]:
    """The statement's parameters: a new key starts a full bucket (TAT now + interval)."""
    return {
        "caller": caller,
        "bucket": bucket,
        "now": now,
        "interval": rate.interval,
        "fresh_tat": now + rate.interval,
        "max_tat": now + SLACK_SECONDS + rate.window - rate.interval,
    }


def step_from_row(stored_tat: float | None, found_tat: float | None, now: float) -> Step:
    """The statement's answer as a :class:`Step`: a stored TAT means the request conformed."""
    if stored_tat is not None:
        return Step(True, float(stored_tat))
    # Refused: the TAT is as found (the bucket cannot be refused without a row).
    return Step(False, max(float(found_tat), now) if found_tat is not None else now)


class PostgresRateLimitStore:
    """TATs in the ``rate_limits`` table; expired rows are deleted every ``prune_seconds``."""

    def __init__(self, engine: AsyncEngine, prune_seconds: float = 300.0) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("the shared rate-limit store needs PostgreSQL (AGENTCORE_DATABASE_URL)")
        self._engine = engine
        self._prune_seconds = prune_seconds
        self._pruned_at: float | None = None

    async def advance(self, caller: str, bucket: str, rate: RateLimit, now: float) -> Step:
        async with self._engine.begin() as conn:
            row = (await conn.execute(ADVANCE_SQL, advance_params(caller, bucket, rate, now))).one()
            if self._prune_due(now):
                await conn.execute(PRUNE_SQL, {"now": now})
        return step_from_row(row.stored_tat, row.found_tat, now)

    def _prune_due(self, now: float) -> bool:
        if self._pruned_at is not None and now - self._pruned_at < self._prune_seconds:
            return False
        self._pruned_at = now
        return True
