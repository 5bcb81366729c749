"""The PostgreSQL rate-limit store's pure parts: its statement decides exactly as GCRA does.

The statement itself runs only against PostgreSQL; here its parameters and its answer are checked
against :func:`gcra_step`, the in-memory store's arithmetic.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentcore.server.ratelimit import RateLimit, Step, gcra_step
from agentcore.server.ratelimit_pg import (
    ADVANCE_SQL,
    PostgresRateLimitStore,
    advance_params,
    step_from_row,
)
from agentcore.storage.db import make_engine
from agentcore.storage.tables import RateLimitState

NOW = 1_795_310_381.123


def sql_step(tat: float | None, rate: RateLimit, now: float) -> Step:
    """What the upsert does, evaluated in Python: insert a new key, update a conforming one."""
    p = advance_params("caller", "bucket", rate, now)
    if tat is None:
        return step_from_row(p["fresh_tat"], None, now)
    stored = max(tat, p["now"]) + p["interval"] if tat <= p["max_tat"] else None
    return step_from_row(stored, tat, now)


@given(
    limit=st.integers(1, 1000),
    window=st.floats(0.5, 3600),
    offset=st.one_of(st.none(), st.floats(-7200, 7200)),
)
def test_the_statement_decides_as_gcra(limit: int, window: float, offset: float | None) -> None:
    rate = RateLimit(limit, window)
    tat = None if offset is None else NOW + offset
    assert sql_step(tat, rate, NOW) == gcra_step(tat, rate, NOW)


def test_a_burst_through_the_statement_matches_the_limit() -> None:
    rate, tat, allowed = RateLimit(50, 60.0), None, 0
    for _ in range(51):
        step = sql_step(tat, rate, NOW)
        allowed += step.allowed
        tat = step.tat
    assert allowed == 50


def test_the_statement_names_the_table_and_its_key() -> None:
    sql = str(ADVANCE_SQL)
    assert "INSERT INTO rate_limits" in sql and "ON CONFLICT (caller, bucket) DO UPDATE" in sql
    assert [c.name for c in RateLimitState.__table__.primary_key] == ["caller", "bucket"]
    assert set(advance_params("c", "b", RateLimit(1), NOW)) == {
        "caller",
        "bucket",
        "now",
        "interval",
        "fresh_tat",
        "max_tat",
    }


def test_the_store_needs_postgresql() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        PostgresRateLimitStore(make_engine("sqlite+aiosqlite:///:memory:"))


async def test_the_setting_puts_the_one_limiter_on_the_shared_store() -> None:
    from agentcore.server import app as app_module
    from tests.unit.server.jsonrpc.conftest import make_settings

    state = app_module.create_app(make_settings(rate_limit_store="postgresql"))[app_module.STATE]
    with pytest.raises(ValueError, match="own database"):
        app_module._share_rate_limits(state, None)  # an injected repository brings no engine
    engine = make_engine("postgresql+asyncpg://u:p@127.0.0.1:9/db")  # never connected
    app_module._share_rate_limits(state, engine)
    assert isinstance(state.limiter.store, PostgresRateLimitStore)
    await engine.dispose()
