"""Trajectory storage on real PostgreSQL (and SQLite), object storage on a real S3 server."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.migrate import alembic_config, current_revision, upgrade
from agentcore.storage.objectstore import LocalObjectStore, ObjectNotFound, S3ObjectStore
from agentcore.storage.tables import Trajectory
from agentcore.storage.trajectories import (
    TrajectoryFilter,
    TrajectoryQuotaExceeded,
    TrajectoryRepository,
    to_api,
    trajectory_id,
)

pytestmark = pytest.mark.integration


def rows_for(job_id: str, iterations: int, per_iteration: int) -> list[dict]:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    for it in range(iterations):
        created = base + dt.timedelta(seconds=it)  # one timestamp per batch: ties broken by id
        for s in range(per_iteration):
            rows.append(
                {
                    "id": trajectory_id(job_id, it, s // 4, s % 4),
                    "job_id": job_id,
                    "job_name": "j",
                    "namespace": "ns",
                    "agent_id": "agent",
                    "iteration": it,
                    "group_index": s // 4,
                    "sample_index": s % 4,
                    "query": f"q{s}",
                    "steps": [{"action": {"tool": "t", "params": "p"}}],
                    "reward": s / per_iteration,
                    "normalized_reward": 0.0,
                    "advantage": 0.0,
                    "success": s % 2 == 0,
                    "execution_time_ms": 10 * s,
                    "error": None,
                    "created_at": created,
                }
            )
    return rows


@pytest.fixture(params=["postgres", "sqlite"])
async def repo(request, tmp_path):
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").dsn
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'agentcore.db'}"
    engine = make_engine(url)
    await upgrade(engine)
    assert await current_revision(engine) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    yield TrajectoryRepository(session_factory(engine))
    await engine.dispose()


async def test_idempotent_inserts_and_keyset_pages(repo):
    job = str(uuid.uuid4())
    rows = rows_for(job, iterations=5, per_iteration=8)
    assert await repo.add_batch(rows) == 40
    assert await repo.add_batch(rows[:16]) == 0  # a redone iteration adds nothing
    assert await repo.count(TrajectoryFilter(job)) == 40

    seen, cursor = [], None
    while True:
        page = await repo.page(TrajectoryFilter(job), limit=7, cursor=cursor)
        assert page.total_count == 40
        seen.extend(r.id for r in page.rows)
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert len(seen) == 40 and set(seen) == {r["id"] for r in rows}

    by_offset = [
        r.id for off in range(0, 40, 9) for r in (await repo.page(TrajectoryFilter(job), 9, off)).rows
    ]
    assert by_offset == seen  # offset and cursor agree on one stable order

    streamed = [r.id async for r in repo.stream(TrajectoryFilter(job), batch=6)]
    assert streamed == seen


async def test_filters(repo):
    job = str(uuid.uuid4())
    await repo.add_batch(rows_for(job, 2, 8))
    only = TrajectoryFilter(job, success_only=True, min_reward=0.5)
    page = await repo.page(only, limit=100)
    assert page.total_count == len(page.rows) == 4
    assert all(r.success and r.reward >= 0.5 for r in page.rows)
    api = to_api(page.rows[0])
    assert api["created_at"].endswith("Z") and set(api) >= {"trajectory_id", "steps", "advantage"}


async def test_migrations_are_repeatable(postgres):
    engine = make_engine(postgres.dsn)
    await upgrade(engine)
    await upgrade(engine)  # already at head: no-op
    async with engine.connect() as conn:
        names = (
            (await conn.execute(text("select indexname from pg_indexes where tablename = 'trajectories'")))
            .scalars()
            .all()
        )
    await engine.dispose()
    assert "ix_trajectories_job_created_id" in names


@pytest.fixture(params=["s3", "local"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    server = request.getfixturevalue("s3")
    s3store = S3ObjectStore(f"store-{uuid.uuid4().hex[:8]}", "prefix", client=server.client())
    s3store.ensure_bucket()
    return s3store


def test_object_store_roundtrip(store, tmp_path):
    store.put_bytes("ckpt/a.bin", b"abc")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (17 << 20))  # over the multipart threshold
    store.put_file("exports/big.bin", big, content_disposition='attachment; filename="big.bin"')
    assert store.get_bytes("ckpt/a.bin") == b"abc"
    assert len(store.get_bytes("exports/big.bin")) == 17 << 20
    assert store.list("ckpt/") == ["ckpt/a.bin"]
    store.delete("ckpt/a.bin")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("ckpt/a.bin")


async def test_large_batches_are_chunked_under_the_bind_parameter_limit(repo):
    job = str(uuid.uuid4())
    rows = rows_for(job, iterations=1, per_iteration=2048)  # 128 queries x 16 trajectories
    assert await repo.add_batch(rows) == 2048
    assert await repo.add_batch(rows) == 0
    assert await repo.count(TrajectoryFilter(job)) == 2048


def _in_namespace(rows: list[dict], namespace: str) -> list[dict]:
    return [{**row, "namespace": namespace} for row in rows]


async def test_a_namespace_cannot_store_more_trajectories_than_its_cap(repo):
    """Red team (issue 12): a tenant could fill the shared database without bound."""
    capped = TrajectoryRepository(repo.sessions, max_per_namespace=100)
    ns, other = f"cap-{uuid.uuid4().hex[:8]}", f"cap-{uuid.uuid4().hex[:8]}"
    first = _in_namespace(rows_for(str(uuid.uuid4()), iterations=1, per_iteration=80), ns)
    assert await capped.add_batch(first) == 80
    over = _in_namespace(rows_for(str(uuid.uuid4()), iterations=1, per_iteration=30), ns)
    with pytest.raises(TrajectoryQuotaExceeded, match=f"{ns}.*at most 100 trajectories"):
        await capped.add_batch(over)
    # All or nothing: the refused batch left no rows and did not move the counter.
    assert await capped.count(TrajectoryFilter(over[0]["job_id"])) == 0
    assert await capped.stored_in(ns) == 80
    assert await capped.add_batch(first) == 0  # a retry of stored rows costs nothing, even near the cap
    assert await capped.add_batch(over[:20]) == 20  # exactly at the cap is allowed
    assert await capped.stored_in(ns) == 100
    # Another tenant's cap is its own.
    theirs = _in_namespace(rows_for(str(uuid.uuid4()), iterations=1, per_iteration=30), other)
    assert await capped.add_batch(theirs) == 30


async def test_concurrent_writers_cannot_overshoot_the_cap(postgres):
    """Two API server replicas (two engines) racing for the last slots: the row lock decides."""
    engines = [make_engine(postgres.dsn) for _ in range(2)]
    await upgrade(engines[0])
    repos = [TrajectoryRepository(session_factory(e), max_per_namespace=50) for e in engines]
    ns = f"race-{uuid.uuid4().hex[:8]}"
    batches = [_in_namespace(rows_for(str(uuid.uuid4()), 1, 10), ns) for _ in range(10)]

    async def write(repo: TrajectoryRepository, batch: list[dict]) -> int:
        try:
            return await repo.add_batch(batch)
        except TrajectoryQuotaExceeded:
            return 0

    results = await asyncio.gather(*(write(repos[i % 2], b) for i, b in enumerate(batches)))
    assert sum(results) == 50 and await repos[0].stored_in(ns) == 50
    async with engines[0].connect() as conn:
        stored = (
            await conn.execute(text("select count(*) from trajectories where namespace = :ns"), {"ns": ns})
        ).scalar_one()
    assert stored == 50
    for engine in engines:
        await engine.dispose()


async def test_the_usage_migration_counts_the_rows_already_stored(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    await upgrade(engine, "0003")
    old = TrajectoryRepository(session_factory(engine))
    rows = _in_namespace(rows_for(str(uuid.uuid4()), 2, 7), "before-0004")
    async with old.sessions() as session, session.begin():  # written as a 0003 server did: no counter
        await session.execute(Trajectory.__table__.insert(), rows)
    await upgrade(engine)
    assert await old.stored_in("before-0004") == 14
    await engine.dispose()
