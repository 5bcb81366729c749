"""The per-tenant export queue: at most N live exports per namespace, first come first served.

A pure function of the namespace's ExportJobs and which of them have a Job, shared by the operator
(which admits exports) and the REST API (which reports a new export's position at once).
"""

from __future__ import annotations

from dataclasses import dataclass

from agentcore.api.exports import ExportJob


@dataclass(frozen=True)
class Slot:
    """The queue's verdict for one ExportJob."""

    admit: bool = False  # create its Job now
    position: int | None = None  # exports ahead of it while it waits; None once admitted


def plan_queue(exportjobs: list[ExportJob], has_job: set[str], max_concurrent: int) -> dict[str, Slot]:
    """At most `max_concurrent` live exports per namespace, first come first served.

    An export holds a slot from the creation of its Job until it reaches a final phase (a cancelled
    one too, until its pod is gone); a cancelled export without a Job is never admitted."""
    live = [ej for ej in exportjobs if not ej.phase.is_terminal]
    live.sort(key=lambda ej: (ej.metadata.creation_timestamp or "", ej.name))
    free = max_concurrent - sum(ej.name in has_job for ej in live)
    slots: dict[str, Slot] = {}
    waiting = 0
    for ej in live:
        if ej.name in has_job or ej.cancel_requested:
            slots[ej.name] = Slot()
        elif free > 0:
            slots[ej.name] = Slot(admit=True)
            free -= 1
        else:
            slots[ej.name] = Slot(position=waiting)
            waiting += 1
    return slots
