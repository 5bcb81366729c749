"""Webhook delivery: signed POSTs with retries (tenacity: exponential backoff with jitter, the
receiver's Retry-After honoured, bounded attempts and total time), in order per TrainingJob, never on the
reconcile path. At-least-once: a delivery is recorded as done only after the receiver accepted it;
a redelivery carries the same idempotency key, so receivers can drop duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from prometheus_client import Counter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from agentcore.api.training import WebhookEvent

log = logging.getLogger("agentcore.webhooks")

DELIVERIES = Counter("agentcore_webhook_deliveries_total", "Webhook delivery attempts", ["event", "outcome"])
for _event in WebhookEvent:  # at 0 from the start, so an alert's increase() sees the first failure
    for _outcome in ("delivered", "failed", "retry"):
        DELIVERIES.labels(_event.value, _outcome)

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
# Worth another attempt besides 5xx: the receiver timed out or asks us to slow down.
RETRY_STATUSES = frozenset({408, 429})


class _Refused(Exception):
    """Not sent, and never will be: the destination is not allowed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Retryable(Exception):
    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date), None if unusable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


class _RetryAfterOr(wait_base):
    """The receiver's Retry-After when it sent one (capped), else the fallback backoff."""

    def __init__(self, fallback: wait_base, cap: float) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return float(self.fallback(retry_state))


class AddressNotAllowed(aiohttp.ClientError):
    """The webhook's host resolves to an address the operator must not call."""


def address_allowed(ip: str, allowed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Public unicast addresses, plus what the operator allow-lists: never loopback, private,
    link-local (cloud metadata at 169.254.169.254), multicast, reserved or unspecified ones."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolves once and checks every address; the connection uses only the checked ones, so a
    DNS answer that changes between check and connect (rebinding) cannot reach an internal host."""

    def __init__(self, allowed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self._inner = aiohttp.DefaultResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> Any:
        infos = await self._inner.resolve(host, port, family)
        refused = [i["host"] for i in infos if not address_allowed(i["host"], self._allowed)]
        if refused:
            raise AddressNotAllowed(f"{host} resolves to {refused[0]}, which webhooks may not reach")
        return infos

    async def close(self) -> None:
        await self._inner.close()


def parse_networks(values: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


class WebhookDispatcher:
    """One worker per job; a failing endpoint delays only its own job's later deliveries."""

    def __init__(
        self,
        on_done: OnDone,
        timeout: float = 10.0,
        retries: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        max_total: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        allowed_networks: Sequence[str] = (),
    ) -> None:
        self.on_done = on_done
        self._allowed = parse_networks(allowed_networks)
        self.timeout = timeout
        self.retries = retries  # attempts in all, the first included
        self.base_delay = base_delay
        self.max_delay = max_delay  # cap of one wait, Retry-After included
        self.max_total = max_total  # no attempt starts after this many seconds
        self._sleep = sleep
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
        # Drained: drop the job's queue and worker (no await since the empty() check, so no
        # submit can slip in between); the next submit starts a fresh pair.
        del self._queues[job_key]
        if self._workers.get(job_key) is asyncio.current_task():
            del self._workers[job_key]

    async def _deliver(self, delivery: Delivery) -> tuple[bool, str]:
        if not delivery.secret:
            # Never unsigned: a receiver could not tell our events from anyone else's.
            DELIVERIES.labels(delivery.event, "failed").inc()
            return False, "no signing key: the webhook's secretRef Secret or key is missing or empty"
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.retries)) | stop_after_delay(self.max_total),
            wait=_RetryAfterOr(
                wait_exponential_jitter(multiplier=self.base_delay, max=self.max_delay), self.max_delay
            ),
            retry=retry_if_exception_type(_Retryable),
            before_sleep=lambda _: DELIVERIES.labels(delivery.event, "retry").inc(),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    status = await self._post(delivery, body)
        except (_Retryable, _Refused) as exc:
            DELIVERIES.labels(delivery.event, "failed").inc()
            return False, exc.detail
        ok = status < 300
        DELIVERIES.labels(delivery.event, "delivered" if ok else "failed").inc()
        return ok, f"HTTP {status}"

    async def _post(self, delivery: Delivery, body: bytes) -> int:
        """One attempt: the HTTP status, or _Retryable when another attempt may succeed."""
        timestamp = str(int(dt.datetime.now(dt.UTC).timestamp()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            "User-Agent": "agentcore-operator",
        }
        if delivery.secret:  # always set: _deliver refuses unsigned deliveries
            headers[SIGNATURE_HEADER] = sign(delivery.secret, timestamp, body)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            self._check_literal(delivery.url)
            # Redirects are not followed: a signed body must reach the configured URL or nowhere.
            async with self._http().post(
                delivery.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                if resp.status in RETRY_STATUSES or resp.status >= 500:
                    raise _Retryable(f"HTTP {resp.status}", retry_after(resp.headers.get("Retry-After")))
                return resp.status
        except AddressNotAllowed as exc:
            raise _Refused(str(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retryable(type(exc).__name__) from exc

    def _check_literal(self, url: str) -> None:
        """aiohttp does not resolve an IP literal: check it here, as the resolver checks names."""
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return  # a name: GuardedResolver checks what it resolves to
        if not address_allowed(host, self._allowed):
            raise AddressNotAllowed(f"{host} is an address webhooks may not reach")

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._allowed))
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        for worker in self._workers.values():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        if self._session is not None:
            await self._session.close()


def shown_url(url: str) -> str:
    """The URL as Events show it: scheme, host, port and path, never a query or credentials
    (a webhook URL's query often carries a token)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: the connection fails anyway; show none
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
