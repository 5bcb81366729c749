"""A watch-backed, in-memory view of every TrainingJob, indexed by uid and by namespace.

``training.get_status`` and ``training.list_jobs`` read it instead of calling the apiserver per
request. It follows the informer pattern: list, then watch from the list's resourceVersion;
when the watch ends it resumes from the last version seen (bookmarks included); when the apiserver
says the version is too old (410 Gone) or anything fails, it lists again, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

from agentcore.kube.client import ApiError, Resource
from agentcore.server.jsonrpc.jobs import TRAININGJOBS_RESOURCE, CachedJob

log = logging.getLogger(__name__)
JSON = dict[str, Any]


class KubeApi(Protocol):
    """What the API server needs of :class:`agentcore.kube.client.KubeClient` (tests fake it)."""

    async def get(
        self, res: Resource, name: str, namespace: str | None = None, sub: str | None = None
    ) -> JSON: ...

    async def list(self, res: Resource, namespace: str | None = None, **params: Any) -> JSON: ...

    async def create(
        self,
        res: Resource,
        body: JSON,
        namespace: str | None = None,
        sub: str | None = None,
        name: str | None = None,
    ) -> JSON: ...

    async def patch(
        self,
        res: Resource,
        name: str,
        body: JSON,
        namespace: str | None = None,
        sub: str | None = None,
        content_type: str = ...,
    ) -> JSON: ...

    def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        **params: Any,
    ) -> AsyncIterator[JSON]: ...

    async def close(self) -> None: ...


class _Expired(Exception):
    """The watch's resourceVersion is gone: list again."""


class JobCache:
    def __init__(
        self,
        kube: KubeApi,
        namespace: str | None = None,
        resource: Resource = TRAININGJOBS_RESOURCE,
        watch_timeout: int = 300,
        stale_after: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        # The apiserver sends a bookmark about every minute and ends a watch after watch_timeout:
        # a stream silent for longer than that is a hung connection, not a quiet cluster.
        self.stale_after = stale_after if stale_after is not None else watch_timeout + 30.0
        self._clock = clock
        self._contact = clock()
        self._namespace = namespace
        self._resource = resource
        self._watch_timeout = watch_timeout
        self._jobs: dict[str, CachedJob] = {}
        self._by_namespace: dict[str, dict[str, CachedJob]] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        # uids deleted recently, so a late read-your-writes insert cannot resurrect them
        self._tombstones: deque[str] = deque(maxlen=1024)
        self._synced = asyncio.Event()
        self.healthy = False
        self.resource_version: str | None = None

    # --- reads ---------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    @property
    def ready(self) -> bool:
        """Synced once, the latest list or watch succeeded (a clean watch reconnect does not flip
        it), and the apiserver was heard from within `stale_after`: a replica whose cache stopped
        following the apiserver leaves the Service's endpoints instead of answering from old data."""
        return self.synced and self.healthy and not self.stale

    @property
    def stale(self) -> bool:
        return self._clock() - self._contact > self.stale_after

    async def wait_synced(self, seconds: float) -> bool:
        if not self._synced.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), seconds)
        return self._synced.is_set()

    def get(self, uid: str) -> CachedJob | None:
        return self._jobs.get(uid)

    def __len__(self) -> int:
        return len(self._jobs)

    def in_namespaces(self, namespaces: Iterable[str] | None) -> list[CachedJob]:
        """Jobs of the given namespaces; None means every namespace."""
        if namespaces is None:
            return list(self._jobs.values())
        return [job for ns in set(namespaces) for job in self._by_namespace.get(ns, {}).values()]

    async def wait_for(
        self, uid: str, predicate: Callable[[CachedJob | None], bool], seconds: float
    ) -> CachedJob | None:
        """Wait until ``predicate(job)`` holds (or ``seconds`` pass); returns the job as last seen."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            job = self._jobs.get(uid)
            remaining = deadline - loop.time()
            if predicate(job) or remaining <= 0:
                return job
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(uid, set()).add(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.get(uid, set()).discard(waiter)

    # --- writes --------------------------------------------------------------------------------

    def observe(self, obj: JSON) -> None:
        """Read-your-writes: add an object this server just created, unless the watch already has
        it (the watch's copy is at least as new) or deleted it."""
        uid = (obj.get("metadata") or {}).get("uid")
        if uid and uid not in self._jobs and uid not in self._tombstones:
            self._put(CachedJob.from_resource(obj))

    def _put(self, job: CachedJob | None) -> None:
        if job is None:  # a resource the models reject (logged by CachedJob)
            return
        self._jobs[job.uid] = job
        self._by_namespace.setdefault(job.namespace, {})[job.uid] = job
        self._wake(job.uid)

    def _remove(self, uid: str) -> None:
        job = self._jobs.pop(uid, None)
        self._tombstones.append(uid)
        if job is not None:
            jobs = self._by_namespace.get(job.namespace, {})
            jobs.pop(uid, None)
            if not jobs:
                self._by_namespace.pop(job.namespace, None)
        self._wake(uid)

    def _wake(self, uid: str) -> None:
        for waiter in self._waiters.pop(uid, set()):
            if not waiter.done():
                waiter.set_result(None)

    def _replace_all(self, items: list[JSON]) -> None:
        fresh = {job.uid: job for job in map(CachedJob.from_resource, items) if job is not None and job.uid}
        for uid in set(self._jobs) - set(fresh):
            self._remove(uid)
        for job in fresh.values():
            self._put(job)

    def apply(self, event: JSON) -> None:
        """Apply one watch event."""
        kind, obj = event.get("type"), event.get("object") or {}
        self._contact = self._clock()  # any event, bookmarks included, proves the stream is alive
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Expired
            raise ApiError(int(obj.get("code") or 500), obj)
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = version
        if kind in ("ADDED", "MODIFIED"):
            self._put(CachedJob.from_resource(obj))
        elif kind == "DELETED":
            self._remove((obj.get("metadata") or {}).get("uid", ""))

    # --- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = 0.5
        while True:
            try:
                await self._list()
                delay = 0.5
                while True:
                    await self._watch()
            except _Expired:
                log.info("trainingjob watch expired; listing again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.healthy = False  # not ready until a list succeeds again
                log.warning("trainingjob cache: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))  # jitter: replicas do not stampede
                delay = min(delay * 2, 30.0)

    async def _list(self) -> None:
        try:
            result = await self._kube.list(self._resource, self._namespace)
        except Exception:
            self.healthy = False
            raise
        self._replace_all(result.get("items") or [])
        self.resource_version = (result.get("metadata") or {}).get("resourceVersion")
        self._contact = self._clock()
        self.healthy = True
        self._synced.set()

    async def _watch(self) -> None:
        try:
            async for event in self._kube.watch(
                self._resource, self._namespace, self.resource_version, timeout_seconds=self._watch_timeout
            ):
                self.apply(event)
            self._contact = self._clock()  # the server ended the watch cleanly: it is alive
        except ApiError as exc:
            if exc.status == 410:
                raise _Expired from None
            raise
