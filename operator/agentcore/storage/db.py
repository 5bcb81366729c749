"""Engine and session factory: PostgreSQL through asyncpg in production, SQLite through aiosqlite
as the embedded default."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

DEFAULT_SQLITE = "sqlite+aiosqlite:///{path}"


def database_url(explicit: str | None = None, state_dir: Path | None = None) -> str:
    """`explicit`, else $AGENTCORE_DATABASE_URL, else a SQLite file under `state_dir` (or cwd)."""
    url = explicit or os.environ.get("AGENTCORE_DATABASE_URL")
    if url:
        return normalise(url)
    base = state_dir or Path.cwd()
    return DEFAULT_SQLITE.format(path=(base / "agentcore.db").resolve())


def normalise(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite://` URLs and pick the async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": 30})
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
