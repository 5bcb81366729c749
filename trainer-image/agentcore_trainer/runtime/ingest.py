"""The trainer's side of the ingestion endpoint (``/ingest/v1/`` of the API server).

In a cluster the trainer holds no platform credential: its datasets, trajectory writes and
checkpoint objects all go through the API server, authenticated by the projected service-account
token the kubelet mounts (re-read on every request, since the kubelet rotates it). Calls are
synchronous (stdlib HTTP) and run off the event loop; they retry with backoff on 429/503 (honouring
Retry-After), on 502/504 and on connection errors, so an API server restart only delays a write.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from agentcore.api.ingest import MAX_BATCH_ROWS, PREFIX
from agentcore.storage.objectstore import ObjectNotFound, ObjectTooLarge

log = logging.getLogger("agentcore.trainer")
RETRIED = frozenset({429, 502, 503, 504})
CHUNK = 1 << 20
MAX_BATCH_BYTES = 8 << 20  # well under the server's default cap (32 MiB)


class IngestError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"ingestion endpoint answered {status}: {message[:500]}")
        self.status = status


@dataclass
class IngestClient:
    base_url: str  # the API server, e.g. http://agentcore-api.agentcore-system.svc:8080
    token_file: Path
    attempts: int = 10
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 120.0
    sleep: Callable[[float], None] = time.sleep

    def url(self, path: str, query: dict[str, str] | None = None) -> str:
        url = f"{self.base_url.rstrip('/')}{PREFIX}/{path}"
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def open(
        self,
        method: str,
        path: str,
        body: bytes | Callable[[], IO[bytes]] | None = None,
        *,
        size: int | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        """The open response of a successful call (the caller reads and closes it).

        ``body`` is bytes or a callable opening a fresh stream (a retry re-sends from the start)."""
        for attempt in range(1, self.attempts + 1):
            data = body() if callable(body) else body
            headers = {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}
            if data is not None:
                headers["Content-Type"] = "application/octet-stream"
                headers["Content-Length"] = str(size if size is not None else len(data))  # type: ignore[arg-type]
            request = urllib.request.Request(self.url(path, query), data=data, method=method, headers=headers)
            try:
                return urllib.request.urlopen(request, timeout=self.timeout)
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRIED or attempt == self.attempts:
                    raise IngestError(exc.code, exc.read(4096).decode(errors="replace")) from None
                asked = _retry_after(exc.headers.get("Retry-After"))
                delay = self._backoff(attempt) if asked is None else min(asked, self.max_delay)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if attempt == self.attempts:
                    raise
                delay = self._backoff(attempt)
                log.warning("ingestion endpoint unreachable (%s); retrying in %.1fs", exc, delay)
            finally:
                if hasattr(data, "close"):
                    data.close()  # type: ignore[union-attr]
            self.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))

    def json(self, method: str, path: str, payload: Any = None, **kwargs: Any) -> Any:
        body = None if payload is None else json.dumps(payload, default=_encode).encode()
        with self.open(method, path, body, **kwargs) as response:
            return json.loads(response.read())

    def queries(self, kind: str) -> list[dict[str, Any]]:
        return list(self.json("GET", f"datasets/{kind}")["queries"])


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _encode(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


class IngestTrajectoryWriter:
    """TrajectoryWriter over ``POST trajectories``: batches bounded in rows and bytes; the server
    inserts by the rows' deterministic ids, so a retried batch adds nothing twice."""

    def __init__(self, client: IngestClient) -> None:
        self.client = client

    async def add_batch(self, rows: Sequence[dict[str, Any]]) -> int:
        return await asyncio.to_thread(self._send, rows)

    def _send(self, rows: Sequence[dict[str, Any]]) -> int:
        inserted = 0
        for batch in _batches(rows):
            inserted += int(self.client.json("POST", "trajectories", {"rows": batch})["inserted"])
        return inserted


def _batches(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for row in rows:
        row_size = len(json.dumps(row, default=_encode))
        if batches[-1] and (len(batches[-1]) >= MAX_BATCH_ROWS or size + row_size > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append(row)
        size += row_size
    return [b for b in batches if b]


class IngestObjectStore:
    """ObjectStore over ``/ingest/v1/objects``: only the job's own checkpoint prefix is reachable."""

    def __init__(self, client: IngestClient) -> None:
        self.client = client

    @property
    def uri(self) -> str:
        return self.client.url("objects")

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        with self.client.open("PUT", _path(key), data) as response:
            return str(json.loads(response.read())["uri"])

    def put_file(
        self,
        key: str,
        path: Path,
        content_type: str = "application/octet-stream",
        content_disposition: str | None = None,
    ) -> str:
        size = path.stat().st_size
        with self.client.open("PUT", _path(key), lambda: path.open("rb"), size=size) as response:
            return str(json.loads(response.read())["uri"])

    def get_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        with self._get(key) as response:
            data = bytes(response.read() if max_bytes is None else response.read(max_bytes + 1))
        if max_bytes is not None and len(data) > max_bytes:
            raise ObjectTooLarge(f"is larger than the limit of {max_bytes} bytes")
        return data

    def get_file(self, key: str, path: Path) -> None:
        with self._get(key) as response, path.open("wb") as fh:
            shutil.copyfileobj(response, fh, CHUNK)

    def _get(self, key: str) -> Any:
        try:
            return self.client.open("GET", _path(key))
        except IngestError as exc:
            if exc.status == 404:
                raise ObjectNotFound(key) from None
            raise

    def list(self, prefix: str) -> list[str]:
        return sorted(self.client.json("GET", "objects", query={"prefix": prefix})["keys"])

    def delete(self, key: str) -> None:
        with self.client.open("DELETE", _path(key)):
            pass

    def url_for(self, key: str) -> str:
        return self.client.url(_path(key))


def _path(key: str) -> str:
    return "objects/" + urllib.parse.quote(key, safe="/")
