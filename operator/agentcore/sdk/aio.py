"""Asynchronous client of the Training API (aiohttp); the same methods as TrainingClient, awaited.

async with AsyncTrainingClient("http://localhost:8080", api_key=token) as client:
    status = await client.get_status(job_id)
    async for trajectory in client.iter_trajectories(job_id):
        ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp

from agentcore.sdk.common import (
    TERMINAL,
    ApiMethods,
    Deadline,
    ProgressBar,
    TrainingApiError,
    decode,
    endpoint,
    headers,
    request_body,
    wants_progress,
)


class AsyncTrainingClient(ApiMethods[Awaitable[Any]]):
    def __init__(
        self, base_url: str, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 3
    ) -> None:
        self.url = endpoint(base_url)
        self.api_key = api_key
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_retries = max_retries
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncTrainingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=headers(self.api_key), timeout=self.timeout)
        return self._session

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """One JSON-RPC call: its result, or TrainingApiError."""
        for attempt in range(self.max_retries + 1):
            try:
                return await self._post(method, params or {})
            except TrainingApiError as exc:
                if exc.retry_after is None or attempt == self.max_retries:
                    raise
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")

    async def _post(self, method: str, body_params: dict[str, Any]) -> Any:
        try:
            async with self._http().post(self.url, data=request_body(method, body_params)) as response:
                return decode(response.status, await response.read())
        except aiohttp.ClientError as exc:
            raise TrainingApiError(None, f"cannot reach {self.url}: {exc}") from exc

    async def iter_trajectories(
        self, job_id: Any, success_only: bool = False, min_reward: float | None = None, page_size: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching trajectory once, following next_cursor page by page."""
        cursor: str | None = None
        while True:
            page = await self.export_trajectories(
                job_id, success_only, min_reward, limit=page_size, cursor=cursor
            )
            for trajectory in page["trajectories"]:
                yield trajectory
            cursor = page.get("next_cursor")
            if not page["has_more"] or not cursor:
                return

    async def wait(
        self,
        job_id: Any,
        poll: float = 5.0,
        timeout: float | None = None,  # noqa: ASYNC109 - the same signature as TrainingClient.wait
        progress: bool | None = None,
    ) -> dict[str, Any]:
        """Poll get_status until the job is completed, failed or cancelled; returns that status."""
        bar = ProgressBar() if wants_progress(progress) else None
        deadline = Deadline(job_id, poll, timeout)
        try:
            while True:
                status: dict[str, Any] = await self.get_status(job_id)
                if bar is not None:
                    bar.update(status)
                if status["status"] in TERMINAL:
                    return status
                await asyncio.sleep(deadline.next_sleep(status))
        finally:
            if bar is not None:
                bar.close()
