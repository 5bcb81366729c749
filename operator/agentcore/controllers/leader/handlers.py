"""kopf wiring for leader election: release the Lease as soon as kopf has stopped reconciling.

kopf's cleanup activities run once its watchers and handler workers have stopped, and before it
waits (5 s, fixed) for stray tasks; releasing here rather than after kopf returns lets a standby
take over that much sooner on SIGTERM. `release` closes the fence first, so the order among the
cleanup handlers does not matter: a write after it is refused. Importing registers the handler.
"""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.cleanup()
async def release_lease(memo: kopf.Memo, **_: Any) -> None:
    await memo.leader.release()
