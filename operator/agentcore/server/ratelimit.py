"""Per-caller rate limits of both route families (the spec's tables) as a generic cell rate algorithm.

GCRA is a token bucket kept as one number per key, the "theoretical arrival time" (TAT): each
request pushes it ``window / limit`` seconds forward, and a request conforms while the TAT stays
within one window of now. It allows bursts up to ``limit`` and refills smoothly, with O(1) state,
and yields exact X-RateLimit-Remaining / -Reset values and a retry-after.

The API server owns one :class:`RateLimiter`; the JSON-RPC dispatcher (a bucket per method) and the
Exports REST routes (a bucket per route) both count against it. Where the TATs live is a
:class:`RateLimitStore`: :class:`MemoryRateLimitStore` keeps them per process, so with several
replicas a caller gets up to ``replicas * limit``; :mod:`agentcore.server.ratelimit_pg` keeps
them in PostgreSQL (one atomic statement per request), which makes the limit global.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

# Float resolution at epoch-second magnitudes is ~1e-7 s and sums of intervals drift further; a
# request within a millisecond of conforming is treated as conforming.
SLACK_SECONDS = 1e-3

DEFAULT_BUCKET = "default"
EXPORTS_CREATE_BUCKET = "exports.create"
EXPORTS_DOWNLOAD_BUCKET = "exports.download"


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window: float = 60.0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")

    @property
    def interval(self) -> float:
        """Seconds one request pushes the TAT forward (one slot refills in this time)."""
        return self.window / self.limit


# The spec's tables. JSON-RPC: list_jobs is a read like get_status; rpc.discover and everything
# that names no known method (including bodies that do not parse) share the default bucket.
# Exports REST: create 10/min and download 50/min (docs/spec/exports-api.md).
SPEC_LIMITS: Mapping[str, RateLimit] = {
    "training.start_grpo": RateLimit(10),
    "training.get_status": RateLimit(100),
    "training.cancel": RateLimit(20),
    "training.evaluate": RateLimit(5),
    "training.export_trajectories": RateLimit(10),
    "training.list_jobs": RateLimit(100),
    DEFAULT_BUCKET: RateLimit(100),
    EXPORTS_CREATE_BUCKET: RateLimit(10),
    EXPORTS_DOWNLOAD_BUCKET: RateLimit(50),
}


class Decision(NamedTuple):  # a NamedTuple: made on every request, and cheap to make
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the bucket is full again
    retry_after: float  # seconds until a request would conform; 0 when allowed

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds to wait (at least 1): the Retry-After header and the error bodies' value."""
        return max(1, math.ceil(self.retry_after))

    def headers(self) -> dict[str, str]:
        """X-RateLimit-Limit / -Remaining / -Reset, and Retry-After when the request was refused."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


class Step(NamedTuple):
    """What a store reports for one request: whether it conformed, and the key's TAT after it
    (as stored when it conformed; as found, and unchanged, when it did not)."""

    allowed: bool
    tat: float


class RateLimitStore(Protocol):
    """Where the TATs live. ``advance`` is GCRA's step for one request and must be atomic per key:
    TAT' = max(TAT, now) + interval, stored only if TAT' - window <= now + SLACK_SECONDS."""

    async def advance(self, caller: str, bucket: str, rate: RateLimit, now: float) -> Step: ...


def gcra_step(tat: float | None, rate: RateLimit, now: float) -> Step:
    """The pure GCRA step from the stored TAT (None: a new key, i.e. a full bucket)."""
    start = now if tat is None else max(tat, now)
    new_tat = start + rate.interval
    if new_tat - rate.window > now + SLACK_SECONDS:
        return Step(False, start)
    return Step(True, new_tat)


def decision(step: Step, rate: RateLimit, now: float) -> Decision:
    """The headers' numbers for a store's step."""
    if not step.allowed:
        return Decision(False, rate.limit, 0, step.tat, step.tat + rate.interval - rate.window - now)
    remaining = math.floor((rate.window - (step.tat - now) + SLACK_SECONDS) / rate.interval)
    return Decision(True, rate.limit, max(0, remaining), step.tat, 0.0)


class MemoryRateLimitStore:
    """TATs in this process's memory, at most ``max_keys`` of them."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tat: dict[tuple[str, str], float] = {}
        self._max_keys = max_keys

    async def advance(self, caller: str, bucket: str, rate: RateLimit, now: float) -> Step:
        # No await inside: the read and the write cannot interleave with another request's.
        key = (caller, bucket)
        step = gcra_step(self._tat.get(key), rate, now)
        if step.allowed:
            self._store(key, step.tat, now)
        return step

    def __len__(self) -> int:
        return len(self._tat)

    def _store(self, key: tuple[str, str], tat: float, now: float) -> None:
        if len(self._tat) >= self._max_keys and key not in self._tat:
            # Keys whose TAT has passed are full buckets: dropping them changes nothing.
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        self._tat[key] = tat


class RateLimiter:
    """The limits (the spec's tables, with overrides) over a store."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit] = SPEC_LIMITS,
        clock: Callable[[], float] = time.time,
        store: RateLimitStore | None = None,
    ) -> None:
        # A bucket the overrides leave out keeps the spec's limit.
        self.limits = {**SPEC_LIMITS, **limits}
        self.store: RateLimitStore = store if store is not None else MemoryRateLimitStore()
        self._clock = clock

    def bucket(self, method: str | None) -> str:
        return method if method in self.limits else DEFAULT_BUCKET

    async def hit(self, caller: str, bucket: str) -> Decision:
        """Count one request of ``caller`` against ``bucket``; a refused request costs nothing."""
        rate = self.limits[bucket]
        now = self._clock()
        return decision(await self.store.advance(caller, bucket, rate, now), rate, now)


def parse_limits(specs: list[str]) -> dict[str, RateLimit]:
    """``["training.get_status=100/60", "default=500"]`` → limits (window in seconds, default 60)."""
    out: dict[str, RateLimit] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        count, _, window = value.partition("/")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = RateLimit(int(count), float(window) if window else 60.0)
        except ValueError:
            raise ValueError(f"bad rate limit {spec!r}: expected METHOD=LIMIT[/WINDOW_SECONDS]") from None
    return out
