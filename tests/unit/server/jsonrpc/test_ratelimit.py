"""Rate limits: the GCRA arithmetic, and 429s with X-RateLimit headers over HTTP."""

from __future__ import annotations

import uuid

import pytest

from agentcore.server.jsonrpc import errors
from agentcore.server.ratelimit import (
    SPEC_LIMITS,
    MemoryRateLimitStore,
    RateLimit,
    RateLimiter,
    Step,
    decision,
    gcra_step,
    parse_limits,
)
from tests.unit.server.jsonrpc.conftest import BIG_LIMITS, Api, FakeClock, make_settings, token


async def test_burst_then_steady_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"m": RateLimit(3, 60)}, clock=clock)
    decisions = [await limiter.hit("alice", "m") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[3].retry_after == pytest.approx(20.0)  # one slot refills every 60/3 s
    assert decisions[2].reset_at == pytest.approx(clock.now + 60)  # full again a window later
    clock.now += 19.9
    assert not (await limiter.hit("alice", "m")).allowed
    clock.now += 0.1
    assert (await limiter.hit("alice", "m")).allowed
    assert (await limiter.hit("bob", "m")).remaining == 2  # callers are independent
    clock.now += 3600
    assert (await limiter.hit("alice", "m")).remaining == 2  # a long pause refills only up to the limit


async def test_refused_requests_cost_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"m": RateLimit(1, 10)}, clock=clock)
    assert (await limiter.hit("a", "m")).allowed
    for _ in range(50):
        assert not (await limiter.hit("a", "m")).allowed
    clock.now += 10
    assert (await limiter.hit("a", "m")).allowed


async def test_buckets_and_pruning() -> None:
    clock = FakeClock()
    store = MemoryRateLimitStore(max_keys=10)
    limiter = RateLimiter(SPEC_LIMITS, clock=clock, store=store)
    assert limiter.bucket("training.evaluate") == "training.evaluate"
    assert limiter.bucket("rpc.discover") == limiter.bucket(None) == "default"
    assert (await limiter.hit("x", "training.evaluate")).limit == 5
    for i in range(10):
        await limiter.hit(f"caller-{i}", "default")
    clock.now += 120
    await limiter.hit("late", "default")
    assert len(store) == 1  # every full bucket was dropped


def test_the_gcra_step_is_pure_and_refusals_leave_the_tat() -> None:
    rate = RateLimit(2, 60)
    first = gcra_step(None, rate, 1000.0)  # a new key: a full bucket
    assert first == Step(True, 1030.0)
    second = gcra_step(first.tat, rate, 1000.0)
    assert second == Step(True, 1060.0)
    refused = gcra_step(second.tat, rate, 1000.0)
    assert refused == Step(False, 1060.0)
    assert decision(refused, rate, 1000.0).retry_after == pytest.approx(30.0)
    assert decision(second, rate, 1000.0).remaining == 0 and decision(first, rate, 1000.0).remaining == 1


async def test_overrides_keep_the_spec_limits_of_other_buckets() -> None:
    limiter = RateLimiter({"default": RateLimit(5)})
    assert limiter.limits["exports.create"] == SPEC_LIMITS["exports.create"] == RateLimit(10)
    assert limiter.limits["exports.download"].limit == 50 and limiter.limits["default"].limit == 5


def test_parse_limits() -> None:
    assert parse_limits(["training.get_status=200/30", "default=5"]) == {
        "training.get_status": RateLimit(200, 30.0),
        "default": RateLimit(5, 60.0),
    }
    for bad in ("nolimit", "x=", "x=abc", "=5", "x=0", "x=5/0"):
        with pytest.raises(ValueError):
            parse_limits([bad])


LIMITED = make_settings(
    rate_limits={**BIG_LIMITS, "training.get_status": RateLimit(2, 60), "default": RateLimit(3, 60)}
)


@pytest.mark.parametrize("settings", [LIMITED])
async def test_429_with_headers(api: Api) -> None:
    params = {"job_id": str(uuid.uuid4())}
    body = {"jsonrpc": "2.0", "method": "training.get_status", "params": params, "id": 1}
    first, second, third = [await api.post(body) for _ in range(3)]
    assert (first.status, second.status) == (200, 200)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert (first.headers["X-RateLimit-Remaining"], second.headers["X-RateLimit-Remaining"]) == ("1", "0")
    assert int(first.headers["X-RateLimit-Reset"]) == int(api.clock.now + 30)
    assert third.status == 429
    assert third.headers["X-RateLimit-Remaining"] == "0" and third.headers["Retry-After"] == "30"
    error = (await third.json())["error"]
    assert error["code"] == errors.RATE_LIMITED and error["data"] == {"retry_after": 30, "limit": 2}
    # Other methods and other callers have their own budgets.
    assert (await api.post({"jsonrpc": "2.0", "method": "rpc.discover", "id": 2})).status == 200
    assert (await api.post(body, tok=token(sub="bob"))).status == 200
    api.clock.now += 30
    assert (await api.post(body)).status == 200


@pytest.mark.parametrize("settings", [LIMITED])
async def test_batches_count_each_entry(api: Api) -> None:
    entry = {
        "jsonrpc": "2.0",
        "method": "training.get_status",
        "params": {"job_id": str(uuid.uuid4())},
        "id": 1,
    }
    resp = await api.post([entry, entry, entry])
    assert resp.status == 200  # partly served
    codes = [r["error"]["code"] for r in await resp.json()]
    assert codes == [errors.NOT_FOUND, errors.NOT_FOUND, errors.RATE_LIMITED]
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    resp = await api.post([entry, entry])
    assert resp.status == 429  # nothing served


@pytest.mark.parametrize("settings", [LIMITED])
async def test_garbage_and_unauthenticated_callers_are_limited_too(api: Api) -> None:
    statuses = [(await api.post(b"{", raw=True)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    unauthenticated = [(await api.post({"jsonrpc": "2.0"}, tok=None)).status for _ in range(4)]
    assert unauthenticated == [401, 401, 401, 429]


async def test_full_limit_at_epoch_second_magnitudes():
    now = [1_795_310_381.123]
    limiter = RateLimiter({"m": RateLimit(50, 60.0), "default": RateLimit(50, 60.0)}, clock=lambda: now[0])
    allowed = [(await limiter.hit("caller", "m")).allowed for _ in range(51)]
    assert allowed == [True] * 50 + [False]


def test_one_limiter_serves_the_jsonrpc_and_the_rest_routes() -> None:
    from agentcore.server.app import STATE, create_app
    from agentcore.server.rest.exports import DEPS

    limiter = RateLimiter(BIG_LIMITS)
    app = create_app(make_settings(), limiter=limiter)
    assert app[STATE].limiter is limiter and app[DEPS].limiter is limiter
    default = create_app(make_settings())
    assert default[DEPS].limiter is default[STATE].limiter
