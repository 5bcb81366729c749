"""Webhook delivery retries against a real local HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

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

    return WebhookDispatcher(
        no_done, timeout=5, retries=retries, base_delay=0.5, sleep=record, allowed_networks=["127.0.0.0/8"]
    )


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


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",  # loopback: the operator's own ports
        "http://localhost:{port}/hook",  # a name that resolves to loopback
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1/hook",  # private
        "http://[::1]:{port}/hook",
    ],
)
async def test_internal_addresses_are_refused_without_a_request(serve, url):
    receiver = Receiver([])
    port = urlsplit(await serve(receiver)).port
    waits: list[float] = []
    hooks = dispatcher(waits)
    hooks._allowed = []  # the default: nothing internal is allow-listed
    ok, detail = await hooks._deliver(delivery(url.format(port=port)))
    await hooks.close()
    assert not ok and "may not reach" in detail
    assert receiver.hits == 0 and waits == []  # nothing was sent, and nothing retried


def test_public_and_allow_listed_addresses() -> None:
    from agentcore.controllers.trainingjob.webhooks import address_allowed, parse_networks

    assert address_allowed("93.184.216.34", [])
    assert not address_allowed("192.168.1.5", [])
    assert address_allowed("192.168.1.5", parse_networks(["192.168.0.0/16"]))
    assert not address_allowed("fe80::1%eth0", [])


async def test_a_delivery_without_a_signing_key_is_not_sent(serve):
    """Red team (issue 12): a missing secretRef Secret or key meant an unsigned delivery."""
    receiver = Receiver([])
    waits: list[float] = []
    hooks = dispatcher(waits)
    unsigned = Delivery("ns/j", "k", await serve(receiver), "training.job.started", {}, None)
    ok, detail = await hooks._deliver(unsigned)
    await hooks.close()
    assert (ok, receiver.hits) == (False, 0)
    assert "secretRef" in detail


async def test_a_job_webhook_queue_and_worker_go_once_drained(serve):
    """Red team (issue 12, low): the per-job queues and workers were never pruned."""
    receiver = Receiver([])
    hooks = dispatcher([])
    url = await serve(receiver)
    hooks.submit(Delivery("ns/j", "k", url, "training.job.started", {}, b"key"))
    await asyncio.gather(*hooks._workers.values())
    await hooks.close()
    assert receiver.hits == 1
    assert hooks._queues == {} and hooks._workers == {}


def test_urls_with_credentials_are_refused_and_events_show_no_secrets():
    # Issue 12: a webhook URL could carry user:password@, and Events printed the URL as given.
    from pydantic import ValidationError

    from agentcore.api.training import Webhook
    from agentcore.controllers.trainingjob.webhooks import shown_url

    hook = {"events": ["training.job.completed"], "secretRef": {"name": "k", "key": "k"}}
    with pytest.raises(ValidationError, match="url"):
        Webhook.model_validate({**hook, "url": "https://user:pass@hooks.example.com/x"})
    assert Webhook.model_validate({**hook, "url": "https://hooks.example.com/a@b"}).url.endswith("/a@b")
    shown = shown_url("https://hooks.example.com:8443/services/T0?token=s3cret#frag")
    assert shown == "https://hooks.example.com:8443/services/T0"
    assert shown_url("http://u:p@host/p?q=1") == "http://host/p"
