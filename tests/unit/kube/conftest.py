"""A fake apiserver on loopback (aiohttp) and kubeconfig writers for the client tests."""

from __future__ import annotations

import json
import ssl
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    peer_cn: str | None = None


@dataclass
class FakeApiServer:
    """Answers every path from ``routes`` (default 200 ``{}``) and records what it received."""

    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        cn = dict(x[0] for x in peer["subject"]).get("commonName") if peer else None
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
                cn,
            )
        )
        handler = self.routes.get((request.method, request.path))
        return await handler(request) if handler else web.json_response({})

    def reply(self, method: str, path: str, status: int, body: Any) -> None:
        async def answer(_: web.Request) -> web.StreamResponse:
            return web.json_response(body, status=status)

        self.routes[(method, path)] = answer


async def serve(server: FakeApiServer, tls: ssl.SSLContext | None = None) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    return runner


@pytest.fixture
async def apiserver() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    runner = await serve(server)
    yield server
    await runner.cleanup()


def kubeconfig(
    path: Path,
    server: str,
    user: dict[str, Any] | None = None,
    context: str = "test",
    namespace: str = "team-a",
    current: bool = True,
    cluster: dict[str, Any] | None = None,
) -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": context, "user": user or {"token": "static-token"}}],
        "contexts": [
            {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}
        ],
    }
    if current:
        doc["current-context"] = context
    path.write_text(yaml.safe_dump(doc))
    return path


def exec_plugin(
    directory: Path, token: str, expiry: str | None = None, numbered: bool = False
) -> dict[str, Any]:
    """A kubeconfig ``exec`` user whose plugin prints an ExecCredential and counts its runs
    (``numbered``: the token ends in the run number)."""
    status: dict[str, Any] = {"token": token}
    if expiry:
        status["expirationTimestamp"] = expiry
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}
    script = directory / "plugin.py"
    script.write_text(
        textwrap.dedent(f"""
        import json, pathlib
        runs = pathlib.Path({str(directory / "runs")!r})
        runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else "1")
        credential = {credential!r}
        if {numbered!r}:
            credential["status"]["token"] += "-" + runs.read_text()
        print(json.dumps(credential))
        """)
    )
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "interactiveMode": "Never",
        }
    }


def plugin_runs(directory: Path) -> int:
    runs = directory / "runs"
    return int(runs.read_text()) if runs.exists() else 0


def as_json(body: bytes) -> Any:
    return json.loads(body) if body else None


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ambient cluster configuration: an empty HOME, no KUBECONFIG, no service account."""
    from agentcore.kube import config

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "SERVICE_ACCOUNT_DIR", tmp_path / "serviceaccount")
    return home
