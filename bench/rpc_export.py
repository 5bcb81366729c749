"""export_trajectories latency on a large table: a 10,000-row page at offset 0, at offset 1,000,000,
and through the keyset cursor at the same depth. Run through `python bench/rpc.py --export-rows N`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from agentcore.devenv.procs import free_port
from agentcore.devenv.services import PostgresServer
from agentcore.storage.db import make_engine
from agentcore.storage.migrate import upgrade
from agentcore.storage.tables import Trajectory
from agentcore.storage.trajectories import encode_cursor

JOB_ID = str(uuid.UUID(int=1))  # bench/rpc.py's first cached TrainingJob
PAGE = 10_000
DEEP = 1_000_000
STEPS = json.dumps(
    [
        {
            "state": {"context": "q"},
            "action": {"tool": "calculator", "params": {"op": "add"}},
            "result": {"value": "3"},
            "timestamp": "2026-01-01T00:00:00Z",
            "duration_ms": 5,
        }
    ]
)


async def fill(dsn: str, rows: int) -> float:
    import asyncpg

    engine = make_engine(dsn)
    await upgrade(engine)
    await engine.dispose()
    conn = await asyncpg.connect(dsn.replace("+asyncpg", ""))
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    started = time.perf_counter()
    columns = [c.name for c in Trajectory.__table__.columns]
    for start in range(0, rows, 100_000):
        batch = [
            (
                str(uuid.UUID(int=(1 << 64) + i)),
                JOB_ID,
                "bench-0",
                "bench",
                "bench-agent",
                i // 128,
                i % 128 // 8,
                i % 8,
                f"query {i}",
                STEPS,
                (i % 100) / 100,
                0.0,
                0.0,
                i % 3 == 0,
                1500,
                None,
                base + dt.timedelta(milliseconds=i),
            )
            for i in range(start, min(rows, start + 100_000))
        ]
        await conn.copy_records_to_table("trajectories", records=batch, columns=columns)
    await conn.execute("analyze trajectories")
    await conn.close()
    return time.perf_counter() - started


async def deep_cursor(dsn: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn.replace("+asyncpg", ""))
    row = await conn.fetchrow(
        "select id, created_at from trajectories where job_id = $1 order by created_at, id offset $2 limit 1",
        JOB_ID,
        DEEP - 1,
    )
    await conn.close()
    marker = Trajectory(id=row["id"], created_at=row["created_at"])
    return encode_cursor(marker)


async def timed_pages(url: str, token: str, params: dict[str, Any], repeat: int = 3) -> tuple[float, int]:
    body = {
        "jsonrpc": "2.0",
        "method": "training.export_trajectories",
        "id": 1,
        "params": {"job_id": JOB_ID, "limit": PAGE, **params},
    }
    times, returned = [], 0
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        for _ in range(repeat):
            started = time.perf_counter()
            async with http.post(f"{url}/api/v1/jsonrpc", json=body) as resp:
                reply = await resp.json()
            times.append(time.perf_counter() - started)
            returned = reply["result"]["returned_count"]
    return statistics.median(times), returned


def run(
    rows: int, rpc_script: str, wait_ready: Callable[[str], Coroutine[Any, Any, None]], secret: str
) -> None:
    from agentcore.auth.tokens import issue_token

    token = issue_token(secret, "bench", ["data:export", "training:view"], ["bench"])
    with PostgresServer() as pg:
        fill_s = asyncio.run(fill(pg.dsn, rows))
        cursor = asyncio.run(deep_cursor(pg.dsn))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        serve = [
            sys.executable,
            rpc_script,
            "--serve",
            "agentcore",
            "--port",
            str(port),
            "--jobs",
            "10",
            "--state",
            str(Path(pg.dir)),
            "--database-url",
            pg.dsn,
        ]
        server = subprocess.Popen(serve, stderr=subprocess.DEVNULL)
        try:
            asyncio.run(wait_ready(url))
            shallow, n0 = asyncio.run(timed_pages(url, token, {"offset": 0}))
            deep, n1 = asyncio.run(timed_pages(url, token, {"offset": DEEP}))
            keyset, n2 = asyncio.run(timed_pages(url, token, {"cursor": cursor}))
        finally:
            server.terminate()
            server.wait(10)
    print(
        f"export_trajectories, {rows:,} rows in PostgreSQL (filled with COPY in {fill_s:.0f} s), "
        f"page of {PAGE:,}, median of 3"
    )
    print(f"offset 0:                {shallow * 1000:8.0f} ms  ({n0} rows)")
    print(f"offset {DEEP:,}:        {deep * 1000:8.0f} ms  ({n1} rows)  x{deep / shallow:.2f} of offset 0")
    print(
        f"cursor at {DEEP:,}:     {keyset * 1000:8.0f} ms  ({n2} rows)  x{keyset / shallow:.2f} of offset 0"
    )
