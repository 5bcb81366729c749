"""Leader election's I/O: poll the Lease, acquire it, renew it, release it on SIGTERM, and fence
every write of the reconcilers (`LeaderElector.check_write`, the KubeClient's ``before_write``).

One elector per operator process, with its own KubeClient (and connection pool), so renewals never
queue behind reconcile traffic. After it lost the lease the process exits (see `run`): a fresh
process comes back as a standby with no leftover in-memory state of its term.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client import Counter, Gauge

from agentcore.api import labels
from agentcore.controllers.leader.election import (
    JITTER,
    ElectionTiming,
    LeaseRecord,
    Observation,
    Term,
    claim,
    observe,
    released,
)
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import LEASES, ApiError, KubeClient

log = logging.getLogger("agentcore.operator.leader")

LEADER = Gauge("agentcore_operator_leader", "1 while this operator process holds the leader lease")
TRANSITIONS = Gauge(
    "agentcore_operator_lease_transitions", "leaseTransitions of the leader Lease, as last seen"
)
REFUSED = Counter("agentcore_operator_fenced_writes_total", "Writes refused because the lease was not held")

Obj = dict[str, Any]


class NotLeader(Exception):
    """A write refused by the fence: this process does not hold an unexpired lease."""


def new_identity() -> str:
    """holderIdentity: the pod name (the chart passes it as POD_NAME) plus a random suffix, so a
    restarted process never mistakes its predecessor's lease for its own."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{secrets.token_hex(4)}"


def user_agent(identity: str) -> str:
    """The operator's User-Agent: names the process in the apiserver's audit log."""
    return f"{labels.OPERATOR_NAME}/{identity}"  # the prefix is what bench/operator_scale.py counts


def lease_namespace(configured: str) -> str:
    """The configured namespace, else the pod's own (in-cluster), else ``default``."""
    return kubeconfig.own_namespace(configured)


class LeaderElector:
    def __init__(
        self,
        kube: KubeClient,
        name: str,
        namespace: str,
        timing: ElectionTiming,
        identity: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kube, self.name, self.namespace, self.timing = kube, name, namespace, timing
        self.identity = identity or new_identity()
        self._clock, self._wall = clock, wall
        self._seen: Observation | None = None
        self._term: Term | None = None
        self._version: str | None = None  # resourceVersion of the Lease as last read or written
        self._stepped_down = False  # released on purpose: not a loss
        self.elected = asyncio.Event()
        self.lost = asyncio.Event()

    # -- what the operator asks ------------------------------------------------------------------
    def fenced_client(self) -> KubeClient:
        """A client for the reconcilers: every write it sends passes `check_write` first."""
        return KubeClient(
            kubeconfig.load(), before_write=self.check_write, user_agent=user_agent(self.identity)
        )

    @property
    def leading(self) -> bool:
        return self._term is not None and self._term.may_write(self._clock())

    @property
    def holder(self) -> str:
        """The holder as last observed ('' when unknown or released)."""
        return self._seen.record.holder if self._seen else ""

    def check_write(self, method: str, path: str) -> None:
        """The fence before every write: raise NotLeader unless this process holds the lease by its
        own clock. Called synchronously right before the request is sent."""
        if not self.leading:
            REFUSED.inc()
            log.info("fence: refused %s %s (not leading)", method, path)
            raise NotLeader(f"{method} {path} refused: {self.identity} does not hold the lease {self._lease}")

    @property
    def _lease(self) -> str:
        return f"{self.namespace}/{self.name}"

    # -- the loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Acquire the lease, then renew it; returns (with `lost` set) once it is lost."""
        log.info("leader election: %s is a candidate for the lease %s", self.identity, self._lease)
        while not await self._attempt():  # noqa: ASYNC110 - polling the apiserver, nothing to wait on
            # Jittered like client-go, so that candidates do not poll in lockstep.
            await asyncio.sleep(self.timing.retry_period * random.uniform(1, JITTER))
        if self._stepped_down:  # a standby told to stop: stays one
            return
        log.info("leader election: %s acquired the lease %s", self.identity, self._lease)
        LEADER.set(1)
        self.elected.set()
        await self._renew_until_lost()
        self._term = None
        LEADER.set(0)
        if not self._stepped_down:
            self.lost.set()

    async def _renew_until_lost(self) -> None:
        while True:
            await asyncio.sleep(self.timing.retry_period)
            while not await self._renew_once():
                term = self._term
                if self._stepped_down:
                    return
                if term is None or term.remaining(self._clock()) <= 0 or self._taken():
                    why = f"taken by {self.holder}" if self._taken() else "renew deadline passed"
                    log.error("leader election: %s lost the lease %s (%s)", self.identity, self._lease, why)
                    return
                await asyncio.sleep(min(self.timing.retry_period, term.remaining(self._clock())))

    async def _renew_once(self) -> bool:
        term = self._term
        remaining = term.remaining(self._clock()) if term else 0
        if remaining <= 0:
            return False
        try:
            async with asyncio.timeout(remaining):
                return await self._attempt()
        except TimeoutError:
            log.warning(
                "lease %s: renew timed out (%.1fs left of the renew deadline)", self._lease, remaining
            )
            return False

    def _taken(self) -> bool:
        return bool(self.holder) and self.holder != self.identity

    async def _attempt(self) -> bool:
        """One tryAcquireOrRenew: read, decide, write. True when the lease is ours afresh (or
        when this process stepped down, to end the loops)."""
        if self._stepped_down:
            return True
        try:
            lease = await self._read()
            now = self._clock()
            if lease is not None:
                self._seen = observe(self._seen, LeaseRecord.from_lease(lease), now)
                TRANSITIONS.set(self._seen.record.transitions)
            record = claim(
                self.identity, self._seen if lease is not None else None, now, self._wall(), self.timing
            )
            if record is None:
                return False
            # The term counts from before the write is sent: a candidate can only see it later.
            started = self._clock()
            written = await self._write(record, create=lease is None)
        except ApiError as exc:  # 409: another candidate wrote first; others: retry next period
            log.log(logging.DEBUG if exc.status == 409 else logging.WARNING, "lease %s: %s", self._lease, exc)
            return False
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("lease %s: %s", self._lease, exc)
            return False
        self._seen = Observation(LeaseRecord.from_lease(written), self._clock())
        if self._stepped_down:  # released while this write was in flight: the fence stays shut
            return True
        self._term = Term(started, self.timing.renew_deadline)
        # A write that took the whole deadline (a blocked event loop) bought no time: try again.
        return self._term.may_write(self._clock())

    async def _read(self) -> Obj | None:
        try:
            lease = await self.kube.get(LEASES, self.name, self.namespace)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        self._version = (lease.get("metadata") or {}).get("resourceVersion")
        return lease

    async def _write(self, record: LeaseRecord, create: bool) -> Obj:
        metadata: Obj = {"name": self.name, "namespace": self.namespace}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata}
        body["spec"] = {k: v for k, v in record.spec().items() if v is not None}
        if create:
            written = await self.kube.create(LEASES, body, self.namespace)
        else:
            metadata["resourceVersion"] = self._version  # optimistic concurrency: 409 if it moved
            written = await self.kube.replace(LEASES, self.name, body, self.namespace)
        self._version = written["metadata"].get("resourceVersion")
        return written

    # -- stepping down -----------------------------------------------------------------------------
    async def release(self, within: float = 5) -> None:
        """Give the lease up (on SIGTERM, after reconciling stopped): the fence closes first, then
        the holder is cleared, so a standby takes over at its next poll instead of after expiry."""
        was_leading, self._term = self.leading, None
        self._stepped_down = True
        LEADER.set(0)
        if not was_leading or self._seen is None:
            return
        try:
            async with asyncio.timeout(within):
                lease = await self._read()
                if lease is None or LeaseRecord.from_lease(lease).holder != self.identity:
                    return
                await self._write(released(LeaseRecord.from_lease(lease), self._wall()), create=False)
        except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("could not release the lease %s (it expires by itself): %s", self._lease, exc)
            return
        log.info("leader election: %s released the lease %s", self.identity, self._lease)
