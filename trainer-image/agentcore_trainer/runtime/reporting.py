"""Where the trainer reports progress: the TrainingJob's status (trainer-owned fields only, through
a merge patch on the status subresource that its per-job Role allows), or the console."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Protocol

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from agentcore.kube.client import TRAININGJOB_RESOURCE, ApiError, KubeClient

log = logging.getLogger("agentcore.trainer")


class StatusSink(Protocol):
    async def report(self, status: dict[str, Any]) -> None: ...


class KubeStatusSink:
    """Merge-patches `status` of one TrainingJob. The operator writes other fields (phase,
    conditions, ...); a merge patch touches only the keys sent, so neither overwrites the other."""

    def __init__(
        self, kube: KubeClient, namespace: str, name: str, attempts: int = 5, backoff: float = 0.5
    ) -> None:
        self.kube, self.namespace, self.name, self.attempts = kube, namespace, name, attempts
        self.backoff = backoff  # first wait in seconds; then exponential with jitter

    async def report(self, status: dict[str, Any]) -> None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
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
            log.error("giving up on a status report after %d attempts: %s", self.attempts, exc)


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

    async def report(self, status: dict[str, Any]) -> None:
        self.last.update(status)
        sys.stdout.write(json.dumps(status, sort_keys=True) + "\n")
        sys.stdout.flush()
