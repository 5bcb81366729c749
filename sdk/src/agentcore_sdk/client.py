"""The two transports over httpx: ``TrainingClient`` (sync) and ``AsyncTrainingClient`` (asyncio).
Both have every method of ``ApiMethods`` (Training and Exports APIs); only sending differs.

    client = TrainingClient("http://localhost:8080", api_key=token)
    job = client.start_training("my-agent", {"n_iterations": 500}, queries)
    final = client.wait(job.job_id, progress=True)

Rate-limited calls (HTTP 429 / -32029) are retried after the server's Retry-After, at most
``max_retries`` times and only when that wait is at most ``max_retry_wait`` seconds; otherwise the
error (with ``retry_after``) is raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from typing import Any, TypeVar, cast

import httpx

from agentcore_sdk import models as m
from agentcore_sdk._core import ApiMethods, Call, Waiter, base_of, headers, next_cursor, parse
from agentcore_sdk._core import should_retry as _should_retry
from agentcore_sdk.errors import ApiError, TrainingApiError

R = TypeVar("R")


class _Settings:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout: float,
        max_retries: int,
        max_retry_wait: float,
        extra_headers: Mapping[str, str] | None,
    ) -> None:
        self.base_url = base_of(base_url)
        self.headers = headers(api_key, extra_headers)
        self.timeout, self.max_retries, self.max_retry_wait = timeout, max_retries, max_retry_wait

    def unreachable(self, exc: httpx.HTTPError) -> TrainingApiError:
        return TrainingApiError(None, f"cannot reach {self.base_url}: {exc}")


def _request(call: Call[Any]) -> dict[str, Any]:
    return {"method": call.method, "url": call.path, "json": call.json, "params": call.query}


class _Client(ApiMethods[R]):
    """What both transports take: the server, the token, the timeout and the retry policy."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_retry_wait: float = 120.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = _Settings(base_url, api_key, timeout, max_retries, max_retry_wait, headers)
        self._http = self._open(self.settings)

    def _open(self, settings: _Settings) -> Any:
        raise NotImplementedError


class TrainingClient(_Client[Any]):
    def _open(self, s: _Settings) -> httpx.Client:
        return httpx.Client(base_url=s.base_url, headers=s.headers, timeout=s.timeout)

    def __enter__(self) -> TrainingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[Any]) -> Any:
        for attempt in range(self.settings.max_retries + 1):
            try:
                return self._once(call)
            except ApiError as exc:
                if not _should_retry(exc, attempt, self.settings.max_retries, self.settings.max_retry_wait):
                    raise
                time.sleep(cast(float, exc.retry_after))
        raise AssertionError("unreachable")

    def _once(self, call: Call[Any]) -> Any:
        try:
            response = self._http.request(**_request(call))
        except httpx.HTTPError as exc:
            raise self.settings.unreachable(exc) from exc
        return parse(call, response.status_code, response.headers, response.content)

    def iter_trajectories(
        self, job_id: Any, success_only: bool = False, min_reward: float | None = None, page_size: int = 1000
    ) -> Iterator[m.TrajectoryResult]:
        """Every matching trajectory once, following next_cursor page by page."""
        cursor: str | None = None
        while True:
            page: m.ExportTrajectoriesResult = self.export_trajectories(
                job_id, success_only, min_reward, limit=page_size, cursor=cursor
            )
            yield from page.trajectories
            if (cursor := next_cursor(page)) is None:
                return

    def wait(
        self, job_id: Any, poll: float = 5.0, timeout: float | None = None, progress: bool | None = None
    ) -> m.JobStatusResult:
        """Poll get_status until the job is completed, failed or cancelled; returns that status.
        ``progress`` draws a progress bar on stderr (default: when stderr is a terminal).
        TimeoutError after ``timeout`` seconds."""
        with Waiter(job_id, poll, timeout, progress) as waiter:
            while True:
                status: m.JobStatusResult = self.get_status(job_id)
                pause = waiter.observe(status)
                if pause is None:
                    return status
                time.sleep(pause)


class AsyncTrainingClient(_Client[Awaitable[Any]]):
    """The same methods as TrainingClient, awaited; ``async with`` closes the connection pool."""

    def _open(self, s: _Settings) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=s.base_url, headers=s.headers, timeout=s.timeout)

    async def __aenter__(self) -> AsyncTrainingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[Any]) -> Any:
        for attempt in range(self.settings.max_retries + 1):
            try:
                return await self._once(call)
            except ApiError as exc:
                if not _should_retry(exc, attempt, self.settings.max_retries, self.settings.max_retry_wait):
                    raise
                await asyncio.sleep(cast(float, exc.retry_after))
        raise AssertionError("unreachable")

    async def _once(self, call: Call[Any]) -> Any:
        try:
            response = await self._http.request(**_request(call))
        except httpx.HTTPError as exc:
            raise self.settings.unreachable(exc) from exc
        return parse(call, response.status_code, response.headers, response.content)

    async def iter_trajectories(
        self, job_id: Any, success_only: bool = False, min_reward: float | None = None, page_size: int = 1000
    ) -> AsyncIterator[m.TrajectoryResult]:
        """Every matching trajectory once, following next_cursor page by page."""
        cursor: str | None = None
        while True:
            page: m.ExportTrajectoriesResult = await self.export_trajectories(
                job_id, success_only, min_reward, limit=page_size, cursor=cursor
            )
            for trajectory in page.trajectories:
                yield trajectory
            if (cursor := next_cursor(page)) is None:
                return

    async def wait(
        self,
        job_id: Any,
        poll: float = 5.0,
        timeout: float | None = None,  # noqa: ASYNC109 - the same signature as TrainingClient.wait
        progress: bool | None = None,
    ) -> m.JobStatusResult:
        """Poll get_status until the job is completed, failed or cancelled; returns that status."""
        with Waiter(job_id, poll, timeout, progress) as waiter:
            while True:
                status: m.JobStatusResult = await self.get_status(job_id)
                pause = waiter.observe(status)
                if pause is None:
                    return status
                await asyncio.sleep(pause)
