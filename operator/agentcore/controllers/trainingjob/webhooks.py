"""Webhook delivery: signed POSTs with retries and backoff, in order per TrainingJob, never on the
reconcile path. At-least-once: a delivery is recorded as done only after the receiver accepted it;
a redelivery carries the same idempotency key, so receivers can drop duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client import Counter

log = logging.getLogger("agentcore.webhooks")

DELIVERIES = Counter("agentcore_webhook_deliveries_total", "Webhook delivery attempts", ["event", "outcome"])

SIGNATURE_HEADER = "X-AgentCore-Signature"
TIMESTAMP_HEADER = "X-AgentCore-Timestamp"
EVENT_HEADER = "X-AgentCore-Event"
DELIVERY_HEADER = "X-AgentCore-Delivery"  # the idempotency key


@dataclass(frozen=True)
class Delivery:
    job_key: str  # namespace/name: deliveries of one job go out in order
    idempotency_key: str
    url: str
    event: str
    payload: dict[str, Any]
    secret: bytes | None


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", so a captured request cannot be replayed later."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def idempotency_key(job_uid: str, notification_key: str, url: str) -> str:
    return hashlib.sha256(f"{job_uid}|{notification_key}|{url}".encode()).hexdigest()[:32]


OnDone = Callable[[Delivery, bool, str], Awaitable[None]]


class WebhookDispatcher:
    """One worker per job; a failing endpoint delays only its own job's later deliveries."""

    def __init__(
        self, on_done: OnDone, timeout: float = 10.0, retries: int = 5, base_delay: float = 0.5
    ) -> None:
        self.on_done = on_done
        self.timeout = timeout
        self.retries = retries
        self.base_delay = base_delay
        self._queues: dict[str, asyncio.Queue[Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._pending: set[str] = set()
        self._session: aiohttp.ClientSession | None = None

    def pending(self, key: str) -> bool:
        return key in self._pending

    def submit(self, delivery: Delivery) -> None:
        if delivery.idempotency_key in self._pending:
            return
        self._pending.add(delivery.idempotency_key)
        queue = self._queues.setdefault(delivery.job_key, asyncio.Queue())
        queue.put_nowait(delivery)
        worker = self._workers.get(delivery.job_key)
        if worker is None or worker.done():
            self._workers[delivery.job_key] = asyncio.create_task(self._work(delivery.job_key))

    async def _work(self, job_key: str) -> None:
        queue = self._queues[job_key]
        while not queue.empty():
            delivery = queue.get_nowait()
            try:
                ok, detail = await self._deliver(delivery)
                await self.on_done(delivery, ok, detail)
            except Exception:
                log.exception("webhook bookkeeping failed for %s", delivery.event)
            finally:
                self._pending.discard(delivery.idempotency_key)

    async def _deliver(self, delivery: Delivery) -> tuple[bool, str]:
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        detail = ""
        for attempt in range(self.retries):
            timestamp = str(int(dt.datetime.now(dt.UTC).timestamp()))
            headers = {
                "Content-Type": "application/json",
                EVENT_HEADER: delivery.event,
                DELIVERY_HEADER: delivery.idempotency_key,
                TIMESTAMP_HEADER: timestamp,
                "User-Agent": "agentcore-operator",
            }
            if delivery.secret:
                headers[SIGNATURE_HEADER] = sign(delivery.secret, timestamp, body)
            try:
                async with self._http().post(
                    delivery.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    if resp.status < 300:
                        DELIVERIES.labels(delivery.event, "delivered").inc()
                        return True, f"HTTP {resp.status}"
                    detail = f"HTTP {resp.status}"
                    if 400 <= resp.status < 500 and resp.status not in (408, 429):
                        break  # the receiver rejects it: retrying will not help
            except (aiohttp.ClientError, TimeoutError) as exc:
                detail = type(exc).__name__
            DELIVERIES.labels(delivery.event, "retry").inc()
            await asyncio.sleep(self.base_delay * 2**attempt)
        DELIVERIES.labels(delivery.event, "failed").inc()
        return False, detail

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        for worker in self._workers.values():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        if self._session is not None:
            await self._session.close()
