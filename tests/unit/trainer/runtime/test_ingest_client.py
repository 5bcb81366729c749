"""The trainer's ingestion client against a local HTTP server: retries on 429/503 honouring
Retry-After, the token file re-read on every request, bounded batches, 404 as ObjectNotFound."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentcore.api.ingest import MAX_BATCH_ROWS, PREFIX
from agentcore.storage.objectstore import ObjectNotFound
from agentcore_trainer.runtime.ingest import (
    IngestClient,
    IngestError,
    IngestObjectStore,
    IngestTrajectoryWriter,
    _batches,
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, bytes]] = []
        self.busy = 0  # answer this many requests with 429 first
        self.objects: dict[str, bytes] = {}


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rec.calls.append((self.command, self.path, self.headers.get("Authorization", ""), body))
            if rec.busy:
                rec.busy -= 1
                self.send_response(429)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            key = self.path.removeprefix(f"{PREFIX}/objects/")
            if self.command == "POST":
                out = {"inserted": len(json.loads(body)["rows"])}
            elif self.command == "PUT":
                rec.objects[key] = body
                out = {"uri": f"s3://b/{key}"}
            elif key in rec.objects:
                self._send(200, rec.objects[key])
                return
            else:
                self._send(404, b"no")
                return
            self._send(200, json.dumps(out).encode())

        def _send(self, status: int, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", rec
    httpd.shutdown()


def _client(url: str, token: Path, sleeps: list[float]) -> IngestClient:
    return IngestClient(url, token, sleep=sleeps.append)


def test_retries_429_honouring_retry_after_and_rereads_the_token(server, tmp_path: Path) -> None:
    url, rec = server
    token = tmp_path / "token"
    token.write_text("first\n")
    sleeps: list[float] = []
    store = IngestObjectStore(_client(url, token, sleeps))
    rec.busy = 2
    assert store.put_bytes("checkpoints/ns/j/a.npz", b"blob") == "s3://b/checkpoints/ns/j/a.npz"
    assert sleeps == [0.0, 0.0] and len(rec.calls) == 3
    token.write_text("rotated")
    assert store.get_bytes("checkpoints/ns/j/a.npz") == b"blob"
    assert rec.calls[0][2] == "Bearer first" and rec.calls[-1][2] == "Bearer rotated"


def test_missing_object_and_persistent_refusal(server, tmp_path: Path) -> None:
    url, rec = server
    token = tmp_path / "token"
    token.write_text("t")
    client = IngestClient(url, token, attempts=3, sleep=lambda _: None)
    with pytest.raises(ObjectNotFound):
        IngestObjectStore(client).get_bytes("checkpoints/ns/j/none")
    rec.busy = 5
    with pytest.raises(IngestError) as info:
        IngestObjectStore(client).put_bytes("checkpoints/ns/j/x", b"x")
    assert info.value.status == 429 and len(rec.calls) == 4


async def test_trajectories_go_in_bounded_batches(server, tmp_path: Path) -> None:
    url, rec = server
    token = tmp_path / "token"
    token.write_text("t")
    now = dt.datetime.now(dt.UTC)
    rows = [{"id": str(i), "created_at": now} for i in range(MAX_BATCH_ROWS + 5)]
    assert await IngestTrajectoryWriter(IngestClient(url, token)).add_batch(rows) == len(rows)
    sizes = [len(json.loads(body)["rows"]) for method, _, _, body in rec.calls if method == "POST"]
    assert sizes == [MAX_BATCH_ROWS, 5]
    assert json.loads(rec.calls[0][3])["rows"][0]["created_at"] == now.isoformat()


def test_batches_split_by_bytes() -> None:
    big = {"id": "x", "query": "q" * (3 << 20)}
    assert [len(b) for b in _batches([big, big, big, big])] == [2, 2]
