"""Synchronous client of the Training API (standard library HTTP: no extra dependency).

    from agentcore.sdk import TrainingClient

    client = TrainingClient(base_url="http://localhost:8080", api_key=token)
    job = client.start_training(agent_id="my-agent", config={"n_iterations": 500}, training_data=queries)
    final = client.wait(job["job_id"], progress=True)
    for trajectory in client.iter_trajectories(job["job_id"], success_only=True):
        ...

Rate-limited calls (-32029) are retried after the server's ``retry_after``, up to ``max_retries``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

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


class TrainingClient(ApiMethods[Any]):
    def __init__(
        self, base_url: str, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 3
    ) -> None:
        self.url = endpoint(base_url)
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """One JSON-RPC call: its result, or TrainingApiError."""
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(method, params or {})
            except TrainingApiError as exc:
                if exc.retry_after is None or attempt == self.max_retries:
                    raise
                time.sleep(exc.retry_after)
        raise AssertionError("unreachable")

    def _post(self, method: str, body_params: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url, data=request_body(method, body_params), headers=headers(self.api_key), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return decode(response.status, response.read())
        except urllib.error.HTTPError as exc:  # 401, 413 and 429 still carry a JSON-RPC body
            with exc:
                return decode(exc.code, exc.read())
        except urllib.error.URLError as exc:
            raise TrainingApiError(None, f"cannot reach {self.url}: {exc.reason}") from exc

    def iter_trajectories(
        self, job_id: Any, success_only: bool = False, min_reward: float | None = None, page_size: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every matching trajectory once, following next_cursor page by page."""
        cursor: str | None = None
        while True:
            page = self.export_trajectories(job_id, success_only, min_reward, limit=page_size, cursor=cursor)
            yield from page["trajectories"]
            cursor = page.get("next_cursor")
            if not page["has_more"] or not cursor:
                return

    def wait(
        self, job_id: Any, poll: float = 5.0, timeout: float | None = None, progress: bool | None = None
    ) -> dict[str, Any]:
        """Poll get_status until the job is completed, failed or cancelled; returns that status.
        ``progress`` draws a progress bar on stderr (default: when stderr is a terminal).
        TimeoutError after ``timeout`` seconds."""
        bar = ProgressBar() if wants_progress(progress) else None
        deadline = Deadline(job_id, poll, timeout)
        try:
            while True:
                status: dict[str, Any] = self.get_status(job_id)
                if bar is not None:
                    bar.update(status)
                if status["status"] in TERMINAL:
                    return status
                time.sleep(deadline.next_sleep(status))
        finally:
            if bar is not None:
                bar.close()
