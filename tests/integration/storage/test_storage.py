"""Trajectory storage on real PostgreSQL (and SQLite), object storage on a real S3 server."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.migrate import alembic_config, current_revision, upgrade
from agentcore.storage.objectstore import LocalObjectStore, ObjectNotFound, S3ObjectStore
from agentcore.storage.trajectories import TrajectoryFilter, TrajectoryRepository, to_api, trajectory_id

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
