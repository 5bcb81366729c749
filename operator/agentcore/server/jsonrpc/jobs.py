"""How the Training API maps onto TrainingJob resources.

- ``job_id`` is the TrainingJob's ``metadata.uid``, also for jobs created with kubectl.
- ``training.start_grpo`` creates ``<agent_id as a DNS label, at most 40 characters>-<8 hex>`` in
  the caller's namespace, labelled ``training.agentcore.io/agent-id`` and
  ``app.kubernetes.io/managed-by: agentcore-api``, annotated
  ``training.agentcore.io/created-by: <token sub>``.
- Status: the resource's camelCase status becomes the spec's snake_case ``get_status`` result
  (:func:`status_view`); a job the operator has not picked up yet (no ``status.phase``) is queued.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic.alias_generators import to_snake

from agentcore.api import GROUP, TRAININGJOBS, VERSION, TrainingPhase, format_money, labels, parse_money
from agentcore.kube.client import Resource
from agentcore.server.jsonrpc.protocol import encode_json

TRAININGJOBS_RESOURCE = Resource(GROUP, VERSION, TRAININGJOBS)
LABEL_AGENT_ID = labels.AGENT_ID
LABEL_MANAGED_BY = labels.MANAGED_BY
MANAGED_BY = labels.API_SERVER_NAME
ANNOTATION_CREATED_BY = labels.CREATED_BY
NAME_PREFIX_MAX = 40

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
# Metadata worth keeping in the cache; managedFields and the like only cost memory.
_KEEP_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
    "annotations",
)


def job_name(agent_id: str) -> str:
    """A fresh resource name for a job of ``agent_id`` (a valid DNS-1123 label)."""
    prefix = _NOT_DNS.sub("-", agent_id.lower())[:NAME_PREFIX_MAX].strip("-") or "job"
    return f"{prefix}-{secrets.token_hex(4)}"


def phase_of(obj: dict[str, Any]) -> TrainingPhase | None:
    try:
        return TrainingPhase(str((obj.get("status") or {}).get("phase")))
    except ValueError:
        return None


def api_status(phase: TrainingPhase | None) -> str:
    return phase.api_value if phase else TrainingPhase.QUEUED.api_value


def _money(value: Any, default: str) -> str:
    try:
        return format_money(parse_money(value)) if value is not None else default
    except ValueError:
        return str(value)


def _metrics(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        return {}
    return {to_snake(k): v for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _progress(status: dict[str, Any], current: int, total: int) -> float:
    if isinstance(status.get("progressPercent"), int | float):
        return float(status["progressPercent"])
    return round(min(100.0, current / total * 100), 1) if total else 0.0


def _remaining_percent(status: dict[str, Any], budget: str, cost: str) -> float:
    if isinstance(status.get("budgetRemainingPercent"), int | float):
        return float(status["budgetRemainingPercent"])
    try:
        b, c = Decimal(budget), Decimal(cost)
    except ArithmeticError:
        return 0.0
    return float(round(max(Decimal(0), (b - c) / b * 100), 1)) if b > 0 else 0.0


def status_view(obj: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``training.get_status`` result for one TrainingJob resource."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    config = spec.get("config") or {}
    status = obj.get("status") or {}
    current = int(status.get("currentIteration") or 0)
    total = int(status.get("totalIterations") or config.get("nIterations") or 0)
    cost = _money(status.get("costUsd"), "0.00")
    budget = _money(status.get("budgetUsd", config.get("maxBudgetUsd")), "100.00")
    view: dict[str, Any] = {
        "job_id": meta.get("uid"),
        "agent_id": spec.get("agentId"),
        "status": api_status(phase_of(obj)),
        "current_iteration": current,
        "total_iterations": total,
        "progress_percent": _progress(status, current, total),
        "metrics": _metrics(status.get("metrics")),
        "cost_usd": cost,
        "budget_usd": budget,
        "budget_remaining_percent": _remaining_percent(status, budget, cost),
        "started_at": status.get("startedAt"),
        "estimated_completion": status.get("estimatedCompletion"),
        "best_checkpoint_id": status.get("bestCheckpointId"),
        "created_at": meta.get("creationTimestamp"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
    }
    for key in ("completedAt", "reason", "message"):
        if status.get(key):
            view[to_snake(key)] = status[key]
    return view


def cancel_view(obj: dict[str, Any], done: bool) -> dict[str, Any]:
    """The spec's ``training.cancel`` result, from ``status.cancellation`` once the job stopped."""
    status = obj.get("status") or {}
    info = status.get("cancellation") or {}
    request = (obj.get("spec") or {}).get("cancel") or {}
    iterations = info.get("iterationsCompleted", status.get("currentIteration"))
    return {
        "job_id": (obj.get("metadata") or {}).get("uid"),
        "status": "cancelled" if done else "cancelling",
        "cancelled_at": info.get("cancelledAt") or (status.get("completedAt") if done else None),
        "iterations_completed": int(iterations or 0),
        "checkpoint_saved": info.get("checkpointSaved"),
        "checkpoint_id": info.get("checkpointId"),
        "reason": info.get("reason") or request.get("reason"),
    }


def checkpoint_ids(obj: dict[str, Any]) -> set[str]:
    status = obj.get("status") or {}
    ids = {c.get("id") for c in status.get("checkpoints") or [] if isinstance(c, dict)}
    if status.get("bestCheckpointId"):
        ids.add(status["bestCheckpointId"])
    return {i for i in ids if isinstance(i, str)}


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """What the cache keeps of a resource: no inline datasets (up to ~1 MB each) or managedFields.
    Code that needs the datasets reads the resource from the apiserver."""
    meta = obj.get("metadata") or {}
    spec = {k: v for k, v in (obj.get("spec") or {}).items() if k not in ("trainingData", "evaluationData")}
    return {
        "metadata": {k: meta[k] for k in _KEEP_METADATA if k in meta},
        "spec": spec,
        "status": obj.get("status") or {},
    }


@dataclass(frozen=True)
class CachedJob:
    """One TrainingJob as the cache holds it, with its get_status view computed once per change."""

    uid: str
    namespace: str
    name: str
    agent_id: str
    phase: TrainingPhase | None
    created_at: str
    obj: dict[str, Any]
    view: dict[str, Any]
    view_json: bytes  # get_status answers with these bytes: encoded once per change, not per request

    @classmethod
    def from_resource(cls, obj: dict[str, Any]) -> CachedJob:
        kept = slim(obj)
        meta = kept["metadata"]
        view = status_view(kept)
        return cls(
            uid=meta.get("uid", ""),
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            agent_id=str(kept["spec"].get("agentId", "")),
            phase=phase_of(kept),
            created_at=meta.get("creationTimestamp") or "",
            obj=kept,
            view=view,
            view_json=encode_json(view),
        )

    @property
    def api_status(self) -> str:
        return api_status(self.phase)

    @property
    def terminal(self) -> bool:
        return self.phase is not None and self.phase.is_terminal

    @property
    def cancel_requested(self) -> bool:
        return bool(((self.obj["spec"].get("cancel")) or {}).get("requested"))
