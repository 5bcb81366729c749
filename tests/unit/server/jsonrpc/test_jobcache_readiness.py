"""Readiness follows the cache: a replica whose watch went silent or failed is not ready."""

from __future__ import annotations

import asyncio
import contextlib

from agentcore.server.jsonrpc.jobcache import JobCache
from tests.unit.server.jsonrpc.conftest import FakeKube
from tests.unit.server.jsonrpc.test_jobcache import SPEC, eventually


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_silent_watch_makes_the_cache_stale_until_the_apiserver_is_heard_again() -> None:
    kube, clock = FakeKube(), Clock()
    cache = JobCache(kube, stale_after=60, clock=clock)
    task = asyncio.create_task(cache.run())
    try:
        assert await cache.wait_synced(2) and cache.ready
        clock.now += 61  # no event, no bookmark, no reconnect for longer than stale_after
        assert cache.stale and not cache.ready
        kube.add("team-a", "j1", SPEC)  # any watch event is contact
        await eventually(lambda: cache.ready)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_failing_apiserver_makes_the_cache_unready() -> None:
    kube = FakeKube()
    cache = JobCache(kube)
    task = asyncio.create_task(cache.run())
    try:
        assert await cache.wait_synced(2) and cache.ready
        kube.fail = {"list": OSError("down"), "watch": OSError("down")}
        for queue in kube.watchers:  # end the open watch, as a dropped connection does
            queue.put_nowait({"type": "ERROR", "object": {"code": 500, "message": "down"}})
        await eventually(lambda: not cache.ready)
        kube.fail = {}
        await eventually(lambda: cache.ready, seconds=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
