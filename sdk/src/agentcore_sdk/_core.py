"""The sans-IO core shared by the sync and async clients: every API method builds a ``Call``
(what to send, how to read the answer) and ``parse`` turns a response into a typed result or a
typed error. The transports (client.py) only move bytes."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from agentcore_sdk import models as m
from agentcore_sdk.errors import ApiError, ExportsApiError, TrainingApiError
from agentcore_sdk.progress import ProgressBar, wants_progress

RPC_PATH = "/api/v1/jsonrpc"
EXPORTS_PATH = "/api/v1/exports"
RATE_LIMITED = -32029
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_ids = itertools.count(1)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and the type of its result (None: no body, e.g. 204)."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    result: type[T] | None
    json: Any = None
    query: dict[str, Any] = field(default_factory=dict)
    rpc: bool = False


def base_of(url: str) -> str:
    """The server's origin: a URL ending in the JSON-RPC path is accepted for compatibility."""
    base = url.rstrip("/")
    return base.removesuffix(RPC_PATH) if base.endswith(RPC_PATH) else base


def headers(api_key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    out = {"Accept": "application/json", "User-Agent": "agentcore-sdk", **(extra or {})}
    if api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out


def _plain(value: Any) -> Any:
    """pydantic models (e.g. the operator's GRPOConfig, TrainingQuery) as snake_case dicts."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def params(**values: Any) -> dict[str, Any]:
    """Named parameters without the unset (None) ones; UUIDs and models made JSON-ready."""
    return {
        key: str(value) if key == "job_id" else _plain(value)
        for key, value in values.items()
        if value is not None
    }


def rpc(method: str, result: type[T] | None, **values: Any) -> Call[T]:
    body = {"jsonrpc": "2.0", "method": method, "params": params(**values), "id": next(_ids)}
    return Call("POST", RPC_PATH, result, json=body, rpc=True)


def _retry_after(status: int, response_headers: Mapping[str, str], data: Any) -> float | None:
    if isinstance(data, dict):
        for key in ("retry_after", "retry_after_seconds"):
            if isinstance(data.get(key), int | float):
                return float(data[key])
    raw = response_headers.get("retry-after")
    if status == 429 and raw is not None:
        try:
            return float(raw)
        except ValueError:
            return None
    return None


def parse(call: Call[T], status: int, response_headers: Mapping[str, str], raw: bytes) -> T | None:
    """The typed result of a response, or a typed ApiError."""
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if call.rpc:
        return _parse_rpc(call, status, response_headers, payload)
    if status >= 400:
        body = payload if isinstance(payload, dict) else {}
        extra = {k: v for k, v in body.items() if k not in ("detail", "status_code", "error_code")}
        raise ExportsApiError(
            body.get("error_code"),
            str(body.get("detail") or f"HTTP {status}"),
            status,
            extra,
            _retry_after(status, response_headers, body),
        )
    return None if call.result is None else _typed(call.result, payload)


def _parse_rpc(call: Call[T], status: int, response_headers: Mapping[str, str], payload: Any) -> T | None:
    if not isinstance(payload, dict):
        raise TrainingApiError(None, f"unexpected response from the server (HTTP {status})", None, status)
    error = payload.get("error")
    if isinstance(error, dict):
        data = error.get("data")
        retry = _retry_after(status, response_headers, data) if error.get("code") == RATE_LIMITED else None
        raise TrainingApiError(error.get("code"), str(error.get("message", "")), data, status, retry)
    result = payload.get("result")
    return result if call.result is None else _typed(call.result, result)


def _typed(result: type[T], payload: Any) -> T:
    if issubclass(result, BaseModel):
        return result.model_validate(payload)
    return payload


def should_retry(exc: ApiError, attempt: int, max_retries: int, max_wait: float) -> bool:
    """Retry a rate-limited call after the server's Retry-After, a bounded number of times and
    only when the wait is bounded too (a notebook must not hang for an hour)."""
    return exc.retry_after is not None and attempt < max_retries and exc.retry_after <= max_wait


class Waiter:
    """What ``wait`` does between polls: the progress bar, the schedule, the timeout."""

    def __init__(self, job_id: Any, poll: float, timeout: float | None, progress: bool | None) -> None:
        self.job_id, self.poll, self.timeout = job_id, poll, timeout
        self.end = None if timeout is None else time.monotonic() + timeout
        self.bar = ProgressBar() if wants_progress(progress) else None

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def observe(self, status: m.JobStatusResult) -> float | None:
        """Seconds to sleep before the next poll, None once the job is finished; TimeoutError
        once the time is up."""
        if self.bar is not None:
            self.bar.update(status)
        if status.status in TERMINAL:
            return None
        if self.end is None:
            return self.poll
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"job {self.job_id} is still {status.status} after {self.timeout}s")
        return min(self.poll, left)


def next_cursor(page: m.ExportTrajectoriesResult) -> str | None:
    """Where iter_trajectories continues; None when it is done."""
    return page.next_cursor if page.has_more and page.next_cursor else None


class ApiMethods(Generic[R]):
    """The spec's methods, each written once over ``_send``: the sync client's returns results,
    the async client's awaitables. ``R`` is what ``_send`` returns."""

    def _send(self, call: Call[Any]) -> R:
        raise NotImplementedError

    def call(self, method: str, params: dict[str, Any] | None = None) -> R:
        """A raw JSON-RPC call: its result as plain JSON."""
        return self._send(rpc(method, None, **(params or {})))

    # --- Training API (JSON-RPC) --------------------------------------------------------------

    def start_training(
        self,
        agent_id: str,
        config: Any = None,
        training_data: Sequence[Any] = (),
        evaluation_data: Sequence[Any] | None = None,
        namespace: str | None = None,
    ) -> R:
        """training.start_grpo → StartGrpoResult. ``config`` and queries as dicts or models."""
        return self._send(
            rpc(
                "training.start_grpo",
                m.StartGrpoResult,
                agent_id=agent_id,
                config=config if config is not None else {},
                training_data=list(training_data),
                evaluation_data=list(evaluation_data) if evaluation_data is not None else None,
                namespace=namespace,
            )
        )

    def get_status(self, job_id: Any) -> R:
        """training.get_status → JobStatusResult."""
        return self._send(rpc("training.get_status", m.JobStatusResult, job_id=job_id))

    def cancel(self, job_id: Any, reason: str | None = None) -> R:
        """training.cancel → CancelResult."""
        return self._send(rpc("training.cancel", m.CancelResult, job_id=job_id, reason=reason))

    def evaluate(
        self, job_id: Any, checkpoint_id: str | None = None, evaluation_queries: Sequence[Any] | None = None
    ) -> R:
        """training.evaluate → EvaluateResult."""
        queries = list(evaluation_queries) if evaluation_queries is not None else None
        return self._send(
            rpc(
                "training.evaluate",
                m.EvaluateResult,
                job_id=job_id,
                checkpoint_id=checkpoint_id,
                evaluation_queries=queries,
            )
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
        """training.export_trajectories → ExportTrajectoriesResult (one page)."""
        return self._send(
            rpc(
                "training.export_trajectories",
                m.ExportTrajectoriesResult,
                job_id=job_id,
                success_only=success_only,
                min_reward=min_reward,
                limit=limit,
                offset=offset or None,
                cursor=cursor,
            )
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
        """training.list_jobs → ListJobsResult."""
        return self._send(
            rpc(
                "training.list_jobs",
                m.ListJobsResult,
                agent_id=agent_id,
                status=status,
                limit=limit,
                offset=offset or None,
                cursor=cursor,
                namespace=namespace,
            )
        )

    # --- Exports API (REST) -------------------------------------------------------------------

    def create_export(
        self,
        export_type: str,
        config: Mapping[str, Any],
        name: str | None = None,
        project_id: str | None = None,
        retention_seconds: int | None = None,
    ) -> R:
        """POST /exports → ExportCreated. ``config``: format, privacy_level, redaction_rule, ..."""
        body = params(
            export_type=export_type,
            config=dict(config),
            name=name,
            project_id=project_id,
            retention_seconds=retention_seconds,
        )
        return self._send(Call("POST", EXPORTS_PATH, m.ExportCreated, json=body))

    def get_export(self, export_id: str) -> R:
        """GET /exports/{id} → ExportJob."""
        return self._send(Call("GET", f"{EXPORTS_PATH}/{export_id}", m.ExportJob))

    def list_exports(
        self,
        project_id: str | None = None,
        status: str | None = None,
        export_type: str | None = None,
        skip: int = 0,
        limit: int = 20,
    ) -> R:
        """GET /exports → ExportList."""
        query = params(project_id=project_id, status=status, export_type=export_type, skip=skip, limit=limit)
        return self._send(Call("GET", EXPORTS_PATH, m.ExportList, query=query))

    def cancel_export(self, export_id: str, reason: str | None = None) -> R:
        """POST /exports/{id}/cancel → ExportCancelled."""
        body = params(reason=reason) or None
        return self._send(Call("POST", f"{EXPORTS_PATH}/{export_id}/cancel", m.ExportCancelled, json=body))

    def delete_export(self, export_id: str) -> R:
        """DELETE /exports/{id}: the export and its file (None)."""
        return self._send(Call("DELETE", f"{EXPORTS_PATH}/{export_id}", None))

    def download_url(self, export_id: str) -> R:
        """GET /exports/{id}/download → DownloadLink (a signed URL)."""
        return self._send(Call("GET", f"{EXPORTS_PATH}/{export_id}/download", m.DownloadLink))

    def export_formats(self) -> R:
        """GET /exports/formats → ExportFormats."""
        return self._send(Call("GET", f"{EXPORTS_PATH}/formats", m.ExportFormats))

    def redaction_rules(self, project_id: str | None = None) -> R:
        """GET /exports/redaction-rules → RedactionRules."""
        query = params(project_id=project_id)
        return self._send(Call("GET", f"{EXPORTS_PATH}/redaction-rules", m.RedactionRules, query=query))

    def redaction_rule(self, rule_id: str, project_id: str | None = None) -> R:
        """GET /exports/redaction-rules/{id} → RedactionRule."""
        query = params(project_id=project_id)
        path = f"{EXPORTS_PATH}/redaction-rules/{rule_id}"
        return self._send(Call("GET", path, m.RedactionRule, query=query))
