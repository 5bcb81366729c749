"""Apply the database schema migrations and exit: ``agentcore migrate`` or, in the chart's image,
``python -m agentcore.storage.migrate_cli`` (the same code).

The Helm chart runs this as its pre-install/pre-upgrade hook Job, so the schema is current before
the operator, the API server or any trainer pod of the new release starts. The database comes
from ``AGENTCORE_DATABASE_URL`` (or ``--database-url``); the migration holds a PostgreSQL advisory
lock, so running it while another process migrates is safe. Exit code 0 on success (including
"already at head"), 1 on a failed migration, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from agentcore import logs

log = logging.getLogger("agentcore.migrate")


async def _upgrade(url: str, revision: str, attempts: int, delay: float) -> str | None:
    from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

    from agentcore.storage.db import make_engine, normalise
    from agentcore.storage.migrate import current_revision, upgrade

    # The database may still be starting (connection refused, DNS): the hook Job waits for it.
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_fixed(delay),
        retry=retry_if_exception_type(OSError),
        before_sleep=lambda s: log.warning(
            "database not reachable (%s); retrying in %.0fs", s.outcome, delay
        ),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            engine = make_engine(normalise(url))
            try:
                await upgrade(engine, revision)
                return await current_revision(engine)
            finally:
                await engine.dispose()
    return None


def _redact(url: str) -> str:
    """The URL without its password, for the log."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="default: $AGENTCORE_DATABASE_URL")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--attempts", type=int, default=30, help="connection attempts (default 30)")
    parser.add_argument("--retry-delay", type=float, default=2.0, help="seconds between attempts")


def run(args: argparse.Namespace) -> int:
    logs.configure("INFO")
    url = args.database_url or os.environ.get("AGENTCORE_DATABASE_URL", "")
    if not url:
        print("migrate: set AGENTCORE_DATABASE_URL (or pass --database-url)", file=sys.stderr)
        return 2
    started = time.monotonic()
    log.info("migrating %s to %s", _redact(url), args.revision)
    try:
        revision = asyncio.run(_upgrade(url, args.revision, max(1, args.attempts), args.retry_delay))
    except Exception as exc:
        log.error("migration failed: %s: %s", type(exc).__name__, exc)
        return 1
    log.info("database at revision %s (%.1fs)", revision, time.monotonic() - started)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agentcore.storage.migrate_cli", description="apply the schema migrations"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
