"""Two API server replicas behind one address: the rate limits hold across them with the
PostgreSQL store (and, as the control, do not with the per-process memory store).

Real parts: two `agentcore api` processes on the test control plane and PostgreSQL, and a
round-robin TCP proxy in front of them standing in for a Service's load balancing."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from agentcore.auth.tokens import ADMIN_ROLE, generate_secret, issue_token
from agentcore.devenv.procs import ManagedProcess, free_port, wait_until
from agentcore.server.app import RPC_PATH
from agentcore.storage.db import make_engine
from agentcore.storage.migrate import upgrade

pytestmark = pytest.mark.integration
AGENTCORE = str(Path(sys.executable).parent / "agentcore")
# training.get_status limited to 20 per 10 minutes (one slot back every 30 s: none comes back during
# the test however slow the machine); 60 calls sent through the proxy.
LIMIT, WINDOW, REQUESTS = 20, 600, 60


class RoundRobinProxy:
    """Accepts on one port and pipes each connection to the next backend in turn."""

    def __init__(self, backends: list[int]) -> None:
        self._next = itertools.cycle(backends)
        self.connections: Counter[int] = Counter()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RoundRobinProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = next(self._next)
        self.connections[backend] += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def start_replicas(
    control_plane, postgres, state: Path, secret: Path, store: str
) -> list[tuple[int, ManagedProcess]]:
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "AGENTCORE_DATABASE_URL": postgres.dsn,
        "AGENTCORE_RATE_LIMIT_STORE": store,
    }
    replicas = []
    for index in range(2):
        port = free_port()
        argv = [
            AGENTCORE,
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--jwt-secret-file",
            str(secret),
        ]
        argv += ["--rate-limit", f"training.get_status={LIMIT}/{WINDOW}"]
        proc = ManagedProcess(f"api-{index}", argv, state / f"api-{store}-{index}.log", env=env)
        replicas.append((port, proc))
    for port, proc in replicas:
        url = f"http://127.0.0.1:{port}/readyz"
        wait_until(
            lambda url=url: urllib.request.urlopen(url, timeout=2).status == 200, 60, "API ready", proc
        )
    return replicas


async def hammer(port: int, token: str) -> Counter[int]:
    """REQUESTS get_status calls, concurrently, each on its own connection: their HTTP statuses."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "training.get_status",
        "params": {"job_id": str(uuid.uuid4())},
    }
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    statuses: Counter[int] = Counter()

    async def one(session: aiohttp.ClientSession) -> None:
        async with session.post(
            f"http://127.0.0.1:{port}{RPC_PATH}", data=json.dumps(body), headers=headers
        ) as resp:
            statuses[resp.status] += 1
            if resp.status == 429:
                assert (await resp.json())["error"]["code"] == -32029

    connector = aiohttp.TCPConnector(force_close=True)  # a new connection, so a new backend, each time
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session) for _ in range(REQUESTS)))
    return statuses


async def through_proxy(backends: list[int], token: str) -> tuple[Counter[int], Counter[int]]:
    async with RoundRobinProxy(backends) as proxy:
        return await hammer(proxy.port, token), proxy.connections


@pytest.fixture(scope="module")
def api_setup(control_plane, crds_installed, postgres, tmp_path_factory) -> Iterator[tuple[Path, Path, str]]:
    engine = make_engine(postgres.dsn)

    async def migrate() -> None:
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    state = tmp_path_factory.mktemp("replicas")
    secret = state / "jwt-secret"
    secret.write_text(generate_secret())
    yield state, secret, secret.read_text().strip()


@pytest.mark.parametrize(
    ("store", "allowed"),
    [("postgresql", LIMIT), ("memory", 2 * LIMIT)],  # memory: each replica counts alone
)
def test_rate_limits_across_two_replicas(control_plane, postgres, api_setup, store, allowed):
    state, secret_file, secret = api_setup
    replicas = start_replicas(control_plane, postgres, state, secret_file, store)
    try:
        # A caller of its own per case, so the shared table starts empty for it.
        token = issue_token(
            secret, f"caller-{store}-{uuid.uuid4().hex[:6]}", namespaces=("default",), roles=(ADMIN_ROLE,)
        )
        statuses, served = asyncio.run(through_proxy([port for port, _ in replicas], token))
    finally:
        for _, proc in replicas:
            proc.stop()
    assert sum(statuses.values()) == REQUESTS
    assert all(count == REQUESTS // 2 for count in served.values()) and len(served) == 2
    # Not-found answers are HTTP 200 with error -32001; refusals are HTTP 429 with -32029.
    assert statuses[200] == allowed and statuses[429] == REQUESTS - allowed, statuses
