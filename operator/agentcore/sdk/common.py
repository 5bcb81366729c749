"""What the sync and async clients share: request parameters, response decoding, the progress bar.
Standard library only."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, Generic, TextIO, TypeVar

RPC_PATH = "/api/v1/jsonrpc"
RATE_LIMITED = -32029
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_ids = itertools.count(1)


class TrainingApiError(Exception):
    """A JSON-RPC error from the server (``code`` as in the spec), or an unusable response
    (``code`` None)."""

    def __init__(
        self, code: int | None, message: str, data: Any = None, http_status: int | None = None
    ) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.http_status = http_status
        super().__init__(f"{code}: {message}" if code is not None else message)

    @property
    def retry_after(self) -> float | None:
        if self.code == RATE_LIMITED and isinstance(self.data, dict):
            value = self.data.get("retry_after")
            return float(value) if isinstance(value, int | float) else None
        return None


def endpoint(base_url: str) -> str:
    """``https://host`` → ``https://host/api/v1/jsonrpc``; a URL already ending in /jsonrpc is kept."""
    base = base_url.rstrip("/")
    return base if base.endswith("/jsonrpc") else base + RPC_PATH


def headers(api_key: str | None) -> dict[str, str]:
    out = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "agentcore-sdk"}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out


def request_body(method: str, params: dict[str, Any]) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": next(_ids)}).encode()


def decode(status: int, raw: bytes) -> Any:
    """The result of a JSON-RPC response body, or TrainingApiError."""
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise TrainingApiError(
            None, f"unexpected response from the server (HTTP {status})", http_status=status
        )
    error = payload.get("error")
    if isinstance(error, dict):
        raise TrainingApiError(error.get("code"), str(error.get("message", "")), error.get("data"), status)
    return payload.get("result")


def _plain(value: Any) -> Any:
    """pydantic models (GRPOConfig, TrainingQuery) as their snake_case API dicts."""
    if hasattr(value, "to_api"):
        return value.to_api()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def params(**values: Any) -> dict[str, Any]:
    """Named parameters without the unset (None) ones; UUIDs and models made JSON-ready."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = str(value) if key == "job_id" else _plain(value)
    return out


class ProgressBar:
    """One line on stderr, redrawn in place on a terminal, else a new line whenever it changes."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = ""

    def update(self, status: dict[str, Any]) -> None:
        line = render(status, self.width)
        if line == self._last:
            return
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self._last)))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last = line

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def wants_progress(progress: bool | None) -> bool:
    """An explicit choice, else a progress bar only where someone watches (stderr is a terminal)."""
    return progress if progress is not None else sys.stderr.isatty()


def render(status: dict[str, Any], width: int = 30) -> str:
    percent = max(0.0, min(100.0, float(status.get("progress_percent") or 0.0)))
    filled = int(width * percent / 100)
    bar = "#" * filled + "-" * (width - filled)
    return (
        f"{str(status.get('job_id', ''))[:8]} [{bar}] {percent:5.1f}% "
        f"iter {status.get('current_iteration', 0)}/{status.get('total_iterations', 0)} "
        f"{status.get('status', '?')} ${status.get('cost_usd', '0.00')}/${status.get('budget_usd', '?')}"
    )


R = TypeVar("R")


class ApiMethods(Generic[R]):
    """The spec's methods over one ``call``: the sync client's returns results, the async client's
    coroutines, so each method is written once."""

    def call(self, method: str, params: dict[str, Any] | None = None) -> R:
        raise NotImplementedError

    def start_training(
        self,
        agent_id: str,
        config: Any = None,
        training_data: Sequence[Any] = (),
        evaluation_data: Sequence[Any] | None = None,
        namespace: str | None = None,
    ) -> R:
        """training.start_grpo: ``config`` as a dict or GRPOConfig, queries as dicts or TrainingQuery."""
        return self.call(
            "training.start_grpo",
            params(
                agent_id=agent_id,
                config=config if config is not None else {},
                training_data=list(training_data),
                evaluation_data=list(evaluation_data) if evaluation_data is not None else None,
                namespace=namespace,
            ),
        )

    def get_status(self, job_id: Any) -> R:
        return self.call("training.get_status", params(job_id=job_id))

    def cancel(self, job_id: Any, reason: str | None = None) -> R:
        return self.call("training.cancel", params(job_id=job_id, reason=reason))

    def evaluate(
        self, job_id: Any, checkpoint_id: str | None = None, evaluation_queries: Sequence[Any] | None = None
    ) -> R:
        queries = list(evaluation_queries) if evaluation_queries is not None else None
        return self.call(
            "training.evaluate",
            params(job_id=job_id, checkpoint_id=checkpoint_id, evaluation_queries=queries),
        )

    def export_trajectories(
        self,
        job_id: Any,
        success_only: bool = False,
        min_reward: float | None = None,
        limit: int = 1000,
        offset: int = 0,
        cursor: str | None = None,
    ) -> R:
        return self.call(
            "training.export_trajectories",
            params(
                job_id=job_id,
                success_only=success_only,
                min_reward=min_reward,
                limit=limit,
                offset=offset or None,
                cursor=cursor,
            ),
        )

    def list_jobs(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
        cursor: str | None = None,
        namespace: str | None = None,
    ) -> R:
        return self.call(
            "training.list_jobs",
            params(
                agent_id=agent_id,
                status=status,
                limit=limit,
                offset=offset or None,
                cursor=cursor,
                namespace=namespace,
            ),
        )


class Deadline:
    """The polling schedule of ``wait``."""

    def __init__(self, job_id: Any, poll: float, timeout: float | None) -> None:
        self.job_id, self.poll, self.timeout = job_id, poll, timeout
        self.end = None if timeout is None else time.monotonic() + timeout

    def next_sleep(self, status: dict[str, Any]) -> float:
        """Seconds to sleep before the next poll; TimeoutError once the time is up."""
        if self.end is None:
            return self.poll
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"job {self.job_id} is still {status.get('status')} after {self.timeout}s")
        return min(self.poll, left)
