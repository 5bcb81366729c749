"""The pure rules of leader election: when a candidate may claim the Lease, what it writes, the
fence, and the timing constraints."""

from __future__ import annotations

import datetime as dt

import pytest

from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.leader.election import (
    ElectionTiming,
    LeaseRecord,
    Observation,
    Term,
    claim,
    observe,
    released,
    timing_problems,
)

TIMING = ElectionTiming(lease_duration=15, renew_deadline=10, retry_period=2)
WALL = dt.datetime(2026, 12, 2, 5, 0, 0, 123456, tzinfo=dt.UTC)
STAMP = "2026-12-02T05:00:00.123456Z"
HELD = LeaseRecord("other_1", 15, "2026-12-02T04:00:00.000000Z", "2026-12-02T04:59:59.000000Z", 4)


@pytest.mark.parametrize(
    ("case", "seen", "now", "expected"),
    [
        ("no lease yet: create it, no transition", None, 0.0, LeaseRecord("me_1", 15, STAMP, STAMP, 0)),
        ("held and valid by our observation: wait", Observation(HELD, 100.0), 114.9, None),
        (
            "held but not renewed for a lease duration: take it over",
            Observation(HELD, 100.0),
            115.0,
            LeaseRecord("me_1", 15, STAMP, STAMP, 5),
        ),
        (
            "released (no holder): take it at once",
            Observation(LeaseRecord("", 1, None, None, 4), 100.0),
            100.0,
            LeaseRecord("me_1", 15, STAMP, STAMP, 5),
        ),
        (
            "ours: renew, keeping acquireTime and the transition count",
            Observation(LeaseRecord("me_1", 15, "a", "r", 7), 100.0),
            101.0,
            LeaseRecord("me_1", 15, "a", STAMP, 7),
        ),
        (
            "the record's own duration counts (a holder configured longer than us)",
            Observation(LeaseRecord("other_1", 60, "a", "r", 1), 100.0),
            130.0,
            None,
        ),
    ],
)
def test_claim(case: str, seen: Observation | None, now: float, expected: LeaseRecord | None) -> None:
    assert claim("me_1", seen, now, WALL, TIMING) == expected, case


def test_a_renewed_record_restarts_the_lease_clock_and_the_same_record_does_not() -> None:
    first = observe(None, HELD, 100.0)
    assert observe(first, HELD, 110.0) is first  # polled again, unchanged: still seen at 100
    renewed = LeaseRecord(HELD.holder, 15, HELD.acquire_time, "2026-12-02T05:00:09.000000Z", 4)
    assert observe(first, renewed, 110.0) == Observation(renewed, 110.0)
    # A holder that keeps renewing is never taken over, however long it holds the lease.
    assert claim("me_1", observe(first, renewed, 110.0), 124.0, WALL, TIMING) is None


def test_release_clears_the_holder_and_keeps_the_transitions() -> None:
    assert released(HELD, WALL) == LeaseRecord("", 1, STAMP, STAMP, 4)
    assert released(HELD, WALL).spec()["holderIdentity"] is None


def test_lease_record_round_trips_through_the_lease_spec() -> None:
    record = LeaseRecord("me_1", 15, STAMP, STAMP, 3)
    assert LeaseRecord.from_lease({"spec": record.spec()}) == record
    assert LeaseRecord.from_lease({}) == LeaseRecord()


@pytest.mark.parametrize(
    ("now", "may_write"),
    [(100.0, True), (109.999, True), (110.0, False), (500.0, False)],
)
def test_the_fence_closes_when_the_renew_deadline_passes(now: float, may_write: bool) -> None:
    term = Term(renewed_at=100.0, renew_deadline=10)
    assert term.may_write(now) is may_write


def test_a_fenced_leader_stops_writing_before_any_candidate_can_take_over() -> None:
    """The safety argument in numbers: the last renew was sent at t; a candidate sees it no earlier
    than t, so it claims no earlier than t + leaseDuration; our writes stop at t + renewDeadline."""
    sent = 100.0
    term = Term(sent, TIMING.renew_deadline)
    seen_by_candidate = Observation(LeaseRecord("me_1", 15, "a", "r", 0), sent)
    first_claim = next(
        sent + step / 10
        for step in range(1000)
        if claim("other_2", seen_by_candidate, sent + step / 10, WALL, TIMING)
    )
    last_write = max(sent + step / 10 for step in range(1000) if term.may_write(sent + step / 10))
    assert first_claim - last_write >= TIMING.lease_duration - TIMING.renew_deadline - 0.1


@pytest.mark.parametrize(
    ("lease", "renew", "retry", "fragment"),
    [
        (10, 10, 2, "lease duration (10s) must be greater than the renew deadline (10s)"),
        (15, 2, 2, "renew deadline (2s) must be greater than 1.2 x the retry period (2s)"),
        (0, -1, 0.5, "lease duration must be a whole number of seconds >= 1"),
        (15, 10, 0, "retry period must be positive"),
    ],
)
def test_timing_rules_name_the_settings(lease: int, renew: float, retry: float, fragment: str) -> None:
    assert any(fragment in p for p in timing_problems(lease, renew, retry))
    with pytest.raises(ValueError, match=r"retry period|renew deadline|lease duration"):
        ElectionTiming(lease, renew, retry)


def test_operator_config_rejects_bad_timings_naming_the_fields() -> None:
    with pytest.raises(ValueError, match=r"lease_duration_seconds.*must be greater than the renew deadline"):
        OperatorConfig(lease_duration_seconds=5, renew_deadline_seconds=8)
    assert OperatorConfig().election_timing() == ElectionTiming(15, 10, 2)
