"""Leader election on a coordination.k8s.io/v1 Lease, the pure part: client-go's rules, no I/O.

Every candidate polls the Lease every retry period. A holder's lease is valid for
``leaseDurationSeconds`` after a candidate *observed the record change* — measured on the
candidate's own monotonic clock, never by comparing the holder's ``renewTime`` with the local wall
clock, so skewed clocks cannot shorten a lease. An expired or empty lease is taken by writing our
record with the resourceVersion we read (optimistic concurrency: of two candidates, one gets 409).

The leader renews every retry period and steps down when ``renewDeadline`` has passed since the
start of its last successful renew. Its writes are fenced by the same instant (`Term.may_write`):
a candidate can take over no earlier than ``leaseDuration`` after it saw that renew, which is after
the renew was sent, so ``leaseDuration - renewDeadline`` is the margin left for a write that passed
the fence to reach the apiserver. See docs/operator-ha.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

Obj = dict[str, Any]
JITTER = 1.2  # client-go's JitterFactor: renewDeadline must exceed retryPeriod by this factor


@dataclass(frozen=True)
class ElectionTiming:
    lease_duration: int  # seconds; the Lease field is an integer
    renew_deadline: float
    retry_period: float

    def __post_init__(self) -> None:
        problems = timing_problems(self.lease_duration, self.renew_deadline, self.retry_period)
        if problems:
            raise ValueError("; ".join(problems))


def timing_problems(lease_duration: float, renew_deadline: float, retry_period: float) -> list[str]:
    """client-go's constraints, each naming the settings it relates."""
    problems = []
    if lease_duration < 1 or lease_duration != int(lease_duration):
        problems.append(f"lease duration must be a whole number of seconds >= 1 (got {lease_duration})")
    if not lease_duration > renew_deadline:
        problems.append(
            f"lease duration ({lease_duration}s) must be greater than the renew deadline ({renew_deadline}s)"
        )
    if not renew_deadline > JITTER * retry_period:
        problems.append(
            f"renew deadline ({renew_deadline}s) must be greater than {JITTER} x the retry period "
            f"({retry_period}s)"
        )
    if retry_period <= 0:
        problems.append(f"retry period must be positive (got {retry_period}s)")
    return problems


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease spec fields leader election uses."""

    holder: str = ""
    lease_duration: int = 0
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Obj) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> Obj:
        return {
            "holderIdentity": self.holder or None,
            "leaseDurationSeconds": self.lease_duration,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


@dataclass(frozen=True)
class Observation:
    """A record and the local monotonic instant it was first seen in this form."""

    record: LeaseRecord
    at: float

    def expired(self, now: float) -> bool:
        return not self.record.holder or now >= self.at + self.record.lease_duration


def observe(previous: Observation | None, record: LeaseRecord, now: float) -> Observation:
    """A changed record restarts the lease clock; the same record keeps the first sighting."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def micro_time(at: dt.datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claim(
    me: str, seen: Observation | None, now: float, wall: dt.datetime, timing: ElectionTiming
) -> LeaseRecord | None:
    """The record to write to acquire or renew the lease, or None while another holder's lease is
    valid. ``seen`` is None when the Lease does not exist yet (the record is then created)."""
    stamp = micro_time(wall)
    if seen is None:
        return LeaseRecord(me, timing.lease_duration, stamp, stamp, 0)
    record = seen.record
    if record.holder == me:
        return replace(record, lease_duration=timing.lease_duration, renew_time=stamp)
    if not seen.expired(now):
        return None
    return LeaseRecord(me, timing.lease_duration, stamp, stamp, record.transitions + 1)


def released(record: LeaseRecord, wall: dt.datetime) -> LeaseRecord:
    """What the leader writes when it steps down on purpose: no holder (so a candidate takes over at
    its next poll), the transition count kept."""
    stamp = micro_time(wall)
    return LeaseRecord("", 1, stamp, stamp, record.transitions)


@dataclass(frozen=True)
class Term:
    """This process' leadership: since when its last successful renew was *sent* (monotonic)."""

    renewed_at: float
    renew_deadline: float

    def may_write(self, now: float) -> bool:
        """The fence: true while the renew deadline has not passed since the last renew."""
        return now < self.renewed_at + self.renew_deadline

    def remaining(self, now: float) -> float:
        return self.renewed_at + self.renew_deadline - now
