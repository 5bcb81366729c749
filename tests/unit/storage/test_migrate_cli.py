"""`agentcore migrate` runs the hook Job's code (`python -m agentcore.storage.migrate_cli`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.cli import build_parser
from agentcore.storage import migrate_cli


def test_agentcore_migrate_is_the_hook_jobs_code(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    args = build_parser().parse_args(["migrate", "--database-url", url, "--attempts", "1"])
    assert args.func is migrate_cli.run
    assert args.func(args) == 0
    assert (tmp_path / "db.sqlite").stat().st_size > 0


def test_missing_database_url_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("AGENTCORE_DATABASE_URL", raising=False)
    assert migrate_cli.main([]) == 2


async def test_an_unreachable_database_is_retried_then_reported(caplog) -> None:
    from agentcore.storage.migrate_cli import _upgrade

    with pytest.raises(OSError):
        await _upgrade("postgresql://u:p@127.0.0.1:9/db", "head", attempts=2, delay=0)
    assert sum("database not reachable" in r.getMessage() for r in caplog.records) == 1  # one retry
