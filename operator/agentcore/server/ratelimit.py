"""Per-caller, per-method rate limits (the spec's table) as a generic cell rate algorithm.

GCRA is a token bucket kept as one number per key, the "theoretical arrival time" (TAT): each
request pushes it ``window / limit`` seconds forward, and a request conforms while the TAT stays
within one window of now. It allows bursts up to ``limit`` and refills smoothly, with O(1) state,
and yields exact X-RateLimit-Remaining / -Reset values and a retry-after.

Limits are per server process: with several replicas, a caller gets up to ``replicas * limit``
(a shared store would be needed for a global limit).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

# Float resolution at epoch-second magnitudes is ~1e-7 s and sums of intervals drift further; a
# request within a millisecond of conforming is treated as conforming.
_SLACK_SECONDS = 1e-3

DEFAULT_BUCKET = "default"


@dataclass(frozen=True)
class RateLimit:
    limit: int
    window: float = 60.0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")


# The spec's table. list_jobs is a read like get_status; rpc.discover and everything that names no
# known method (including bodies that do not parse) share the default bucket.
SPEC_LIMITS: Mapping[str, RateLimit] = {
    "training.start_grpo": RateLimit(10),
    "training.get_status": RateLimit(100),
    "training.cancel": RateLimit(20),
    "training.evaluate": RateLimit(5),
    "training.export_trajectories": RateLimit(10),
    "training.list_jobs": RateLimit(100),
    DEFAULT_BUCKET: RateLimit(100),
}


class Decision(NamedTuple):  # a NamedTuple: made on every request, and cheap to make
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the bucket is full again
    retry_after: float  # seconds until a request would conform; 0 when allowed

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


class RateLimiter:
    def __init__(
        self,
        limits: Mapping[str, RateLimit] = SPEC_LIMITS,
        clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
    ) -> None:
        self.limits = dict(limits)
        self.limits.setdefault(DEFAULT_BUCKET, SPEC_LIMITS[DEFAULT_BUCKET])
        self._clock = clock
        self._tat: dict[tuple[str, str], float] = {}
        self._max_keys = max_keys

    def bucket(self, method: str | None) -> str:
        return method if method in self.limits else DEFAULT_BUCKET

    def hit(self, caller: str, bucket: str) -> Decision:
        """Count one request of ``caller`` against ``bucket``; a refused request costs nothing."""
        rate = self.limits[bucket]
        now = self._clock()
        interval = rate.window / rate.limit
        tat = max(self._tat.get((caller, bucket), now), now)
        new_tat = tat + interval
        conforms_at = new_tat - rate.window
        if conforms_at > now + _SLACK_SECONDS:
            return Decision(False, rate.limit, 0, tat, conforms_at - now)
        self._store((caller, bucket), new_tat, now)
        remaining = math.floor((rate.window - (new_tat - now) + _SLACK_SECONDS) / interval)
        return Decision(True, rate.limit, max(0, remaining), new_tat, 0.0)

    def _store(self, key: tuple[str, str], tat: float, now: float) -> None:
        if len(self._tat) >= self._max_keys and key not in self._tat:
            # Keys whose TAT has passed are full buckets: dropping them changes nothing.
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        self._tat[key] = tat


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
