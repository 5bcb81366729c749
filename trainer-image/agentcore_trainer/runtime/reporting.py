"""Where the trainer reports progress: the TrainingJob's status (trainer-owned fields only, through
a merge patch on the status subresource that its per-job Role allows), or the console."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Protocol

import aiohttp
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from agentcore.kube.client import TRAININGJOB_RESOURCE, ApiError, KubeClient

log = logging.getLogger("agentcore.trainer")


class StatusSink(Protocol):
    async def report(self, status: dict[str, Any], final: bool = False) -> None: ...


class KubeStatusSink:
    """Merge-patches `status` of one TrainingJob. The operator writes other fields (phase,
    conditions, ...); a merge patch touches only the keys sent, so neither overwrites the other."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        name: str,
        attempts: int = 5,
        backoff: float = 0.5,
        final_deadline: float = 180.0,
    ) -> None:
        self.kube, self.namespace, self.name, self.attempts = kube, namespace, name, attempts
        self.backoff = backoff  # first wait in seconds; then exponential with jitter
        self.final_deadline = final_deadline
        # Fields of reports given up on: sent with the next one, so a report lost while the
        # apiserver restarts (longer than the attempts last) cannot leave its fields stale for good
        # (the chaos suite: a run that completed showed currentIteration 39 of 40).
        self.unsent: dict[str, Any] = {}

    async def report(self, status: dict[str, Any], final: bool = False) -> None:
        """`final`: the run's last report (its outcome). It is retried for `final_deadline`
        seconds rather than `attempts` times: a run that exits without it reads as a crash."""
        status = merged(self.unsent, status)
        stop = stop_after_delay(self.final_deadline) if final else stop_after_attempt(self.attempts)
        retrying = AsyncRetrying(
            stop=stop,
            wait=wait_exponential_jitter(multiplier=self.backoff, max=10, jitter=self.backoff),
            retry=retry_if_exception(_retriable),
            before_sleep=lambda state: log.warning("status report failed (%s); retrying", state.outcome),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self.kube.patch(
                        TRAININGJOB_RESOURCE, self.name, {"status": status}, self.namespace, sub="status"
                    )
        except (TimeoutError, ApiError, OSError, aiohttp.ClientError) as exc:
            if not _transient(exc):
                raise  # not transient (or a denial that outlasted the retries): surface it
            self.unsent = status
            log.error("giving up on a status report for now (sent with the next one): %s", exc)
            return
        self.unsent = {}


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`update` over `base` as a JSON merge patch applies them one after the other (RFC 7386)."""
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        out[key] = merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def _retriable(exc: BaseException) -> bool:
    """Transient failures, and a denial right after a kube-apiserver (re)start: its RBAC authorizer
    denies what a RoleBinding allows until its informers have synced (kubernetes/kubernetes#121635).
    The Role for this patch is the job's own, so a 401/403 is retried too, and raised if it lasts."""
    return _transient(exc) or (isinstance(exc, ApiError) and exc.status in (401, 403))


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiError):
        return exc.status not in (400, 403, 404, 422)
    # A restarting apiserver drops connections mid-request: ServerDisconnectedError and
    # ClientPayloadError are aiohttp.ClientErrors but not OSErrors, and must not fail the run.
    return isinstance(exc, TimeoutError | OSError | aiohttp.ClientError)


class ConsoleStatusSink:
    """Standalone runs: one JSON line per report on stdout."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    async def report(self, status: dict[str, Any], final: bool = False) -> None:
        self.last.update(status)
        sys.stdout.write(json.dumps(status, sort_keys=True) + "\n")
        sys.stdout.flush()
