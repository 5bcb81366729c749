"""The audit log: API actions recorded in the ``audit_log`` table (who, what, when, outcome).

The Exports REST API records its own actions; any other API surface (the JSON-RPC server) can
record through :class:`AuditLog` too. Recording never fails the request it describes: a database
outage is logged, not raised.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentcore.storage.tables import AuditEntry

log = logging.getLogger("agentcore.audit")


class AuditLog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sessions = sessions
        self.clock = clock

    async def record(
        self,
        namespace: str,
        actor: str,
        action: str,
        resource_kind: str,
        resource_name: str | None = None,
        outcome: str = "success",
        request_id: str | None = None,
        source_ip: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        row = {
            "id": str(uuid.uuid4()),
            "occurred_at": self.clock(),
            "namespace": namespace[:63],
            "actor": actor[:253],
            "action": action[:64],
            "resource_kind": resource_kind[:64],
            "resource_name": resource_name[:253] if resource_name else None,
            "outcome": outcome[:32],
            "request_id": request_id[:128] if request_id else None,
            "source_ip": source_ip[:64] if source_ip else None,
            "details": dict(details) if details else None,
        }
        try:
            async with self.sessions() as session, session.begin():
                await session.execute(insert(AuditEntry).values(row))
        except Exception:
            log.exception("could not record audit entry %s %s/%s", action, namespace, resource_name)
