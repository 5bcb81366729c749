"""Where the trainer reports progress: the TrainingJob's status (trainer-owned fields only, through
a merge patch on the status subresource that its per-job Role allows), or the console."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any, Protocol

from agentcore.kube.client import TRAININGJOB_RESOURCE, ApiError, KubeClient

log = logging.getLogger("agentcore.trainer")


class StatusSink(Protocol):
    async def report(self, status: dict[str, Any]) -> None: ...


class KubeStatusSink:
    """Merge-patches `status` of one TrainingJob. The operator writes other fields (phase,
    conditions, ...); a merge patch touches only the keys sent, so neither overwrites the other."""

    def __init__(self, kube: KubeClient, namespace: str, name: str, attempts: int = 5) -> None:
        self.kube, self.namespace, self.name, self.attempts = kube, namespace, name, attempts

    async def report(self, status: dict[str, Any]) -> None:
        for attempt in range(self.attempts):
            try:
                await self.kube.patch(
                    TRAININGJOB_RESOURCE, self.name, {"status": status}, self.namespace, sub="status"
                )
                return
            except (TimeoutError, ApiError, OSError) as exc:
                if isinstance(exc, ApiError) and exc.status in (400, 403, 404, 422):
                    raise  # not transient: a schema or permission problem to surface
                log.warning("status report failed (%s); retrying", exc)
                await asyncio.sleep(0.5 * 2**attempt)
        log.error("giving up on a status report after %d attempts", self.attempts)


class ConsoleStatusSink:
    """Standalone runs: one JSON line per report on stdout."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    async def report(self, status: dict[str, Any]) -> None:
        self.last.update(status)
        sys.stdout.write(json.dumps(status, sort_keys=True) + "\n")
        sys.stdout.flush()
