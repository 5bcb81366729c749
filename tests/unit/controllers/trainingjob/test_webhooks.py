"""Webhook delivery retries against a real local HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from agentcore.controllers.trainingjob.webhooks import Delivery, WebhookDispatcher, retry_after


class Receiver:
    def __init__(self, responses: list[web.Response]) -> None:
        self.responses, self.hits = responses, 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return self.responses.pop(0) if self.responses else web.Response(status=200)


@pytest.fixture
async def serve() -> AsyncIterator:
    runners: list[web.AppRunner] = []

    async def start(receiver: Receiver) -> str:
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        app.router.add_post("/elsewhere", receiver.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/hook"

    yield start
    for runner in runners:
        await runner.cleanup()


def dispatcher(waits: list[float], retries: int = 4) -> WebhookDispatcher:
    async def no_done(*_: object) -> None:
        return None

    async def record(seconds: float) -> None:
        waits.append(seconds)

    return WebhookDispatcher(no_done, timeout=5, retries=retries, base_delay=0.5, sleep=record)


def delivery(url: str) -> Delivery:
    return Delivery("ns/j", "k", url, "training.job.started", {"event": "training.job.started"}, b"key")


async def test_429_with_retry_after_then_200(serve):
    receiver = Receiver([web.Response(status=429, headers={"Retry-After": "7"})])
    waits: list[float] = []
    hooks = dispatcher(waits)
    ok, detail = await hooks._deliver(delivery(await serve(receiver)))
    await hooks.close()
    assert (ok, detail, receiver.hits) == (True, "HTTP 200", 2)
    assert waits == [7.0]  # the receiver's Retry-After, not our backoff


async def test_500s_are_retried_with_backoff_then_given_up(serve):
    receiver = Receiver([web.Response(status=500) for _ in range(10)])
    waits: list[float] = []
    hooks = dispatcher(waits, retries=4)
    ok, detail = await hooks._deliver(delivery(await serve(receiver)))
    await hooks.close()
    assert (ok, detail, receiver.hits) == (False, "HTTP 500", 4)
    assert len(waits) == 3 and all(0 < w <= 30 for w in waits)


async def test_410_is_not_retried(serve):
    receiver = Receiver([web.Response(status=410)])
    waits: list[float] = []
    hooks = dispatcher(waits)
    ok, detail = await hooks._deliver(delivery(await serve(receiver)))
    await hooks.close()
    assert (ok, detail, receiver.hits, waits) == (False, "HTTP 410", 1, [])


async def test_redirects_are_not_followed(serve):
    receiver = Receiver([web.Response(status=307, headers={"Location": "/elsewhere"})])
    waits: list[float] = []
    hooks = dispatcher(waits)
    ok, detail = await hooks._deliver(delivery(await serve(receiver)))
    await hooks.close()
    assert (ok, detail, receiver.hits) == (False, "HTTP 307", 1)


def test_retry_after_forms():
    assert retry_after("3") == 3.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
