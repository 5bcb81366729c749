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

import logging
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from agentcore.api import GROUP, TRAININGJOBS, VERSION, TrainingPhase, format_money, labels
from agentcore.api.common import CamelModel, CancelRequest, ObjectMeta
from agentcore.api.training import GRPOConfig, TrainingJobStatus
from agentcore.cost import money
from agentcore.kube.client import Resource
from agentcore.server.jsonrpc.protocol import encode_json

log = logging.getLogger(__name__)

TRAININGJOBS_RESOURCE = Resource(GROUP, VERSION, TRAININGJOBS)
LABEL_AGENT_ID = labels.AGENT_ID
LABEL_MANAGED_BY = labels.MANAGED_BY
MANAGED_BY = labels.API_SERVER_NAME
ANNOTATION_CREATED_BY = labels.CREATED_BY
NAME_PREFIX_MAX = 40

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def job_name(agent_id: str) -> str:
    """A fresh resource name for a job of ``agent_id``: a DNS-1035 label of at most 49 characters,
    valid for any ``workers`` (see `training.DISTRIBUTED_NAME`)."""
    prefix = _NOT_DNS.sub("-", agent_id.lower())[:NAME_PREFIX_MAX].strip("-") or "job"
    if not prefix[0].isalpha():  # a DNS-1035 label, as a distributed job's Service name must be
        prefix = f"job-{prefix}"[:NAME_PREFIX_MAX].rstrip("-")
    return f"{prefix}-{secrets.token_hex(4)}"


class _Slim(CamelModel):
    # What the cache keeps: everything else (datasets of up to ~1 MB, managedFields) is dropped.
    model_config = ConfigDict(extra="ignore")


class CachedSpec(_Slim):
    agent_id: str
    config: GRPOConfig
    cancel: CancelRequest | None = None


class CachedTrainingJob(_Slim):
    """A TrainingJob without its datasets: code that needs them reads the resource itself."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CachedSpec
    status: TrainingJobStatus = Field(default_factory=TrainingJobStatus)


def api_status(phase: TrainingPhase | None) -> str:
    return phase.api_value if phase else TrainingPhase.QUEUED.api_value


def _progress(status: TrainingJobStatus, current: int, total: int) -> float:
    if status.progress_percent is not None:
        return float(status.progress_percent)
    return round(min(100.0, current / total * 100), 1) if total else 0.0


def _remaining_percent(status: TrainingJobStatus, budget: Decimal, cost: Decimal) -> float:
    if status.budget_remaining_percent is not None:
        return float(status.budget_remaining_percent)
    return float(round(max(Decimal(0), (budget - cost) / budget * 100), 1)) if budget > 0 else 0.0


def status_view(job: CachedTrainingJob) -> dict[str, Any]:
    """The spec's ``training.get_status`` result for one TrainingJob resource."""
    meta, spec, status = job.metadata, job.spec, job.status
    current = status.current_iteration or 0
    total = status.total_iterations or spec.config.n_iterations
    cost = status.cost_usd or Decimal(0)
    budget = status.budget_usd if status.budget_usd is not None else spec.config.max_budget_usd
    stamps = status.to_api()  # timestamps as the JSON the resource holds
    view: dict[str, Any] = {
        "job_id": meta.uid,
        "agent_id": spec.agent_id,
        "status": api_status(status.phase),
        "current_iteration": current,
        "total_iterations": total,
        "progress_percent": _progress(status, current, total),
        "metrics": status.metrics.to_api() if status.metrics else {},
        "cost_usd": money(cost),  # the API shows cents; the resource keeps the exact amount
        "budget_usd": format_money(budget),
        "budget_remaining_percent": _remaining_percent(status, budget, cost),
        "started_at": stamps.get("started_at"),
        "estimated_completion": stamps.get("estimated_completion"),
        "best_checkpoint_id": status.best_checkpoint_id,
        "created_at": meta.creation_timestamp,
        "namespace": meta.namespace,
        "name": meta.name,
    }
    for key in ("completed_at", "reason", "message"):
        if stamps.get(key):
            view[key] = stamps[key]
    return view


def cancel_view(job: CachedTrainingJob, done: bool) -> dict[str, Any]:
    """The spec's ``training.cancel`` result, from ``status.cancellation`` once the job stopped."""
    status = job.status
    info = status.cancellation
    stamps = info.to_api() if info else {}
    iterations = info.iterations_completed if info and info.iterations_completed is not None else None
    completed = status.to_api().get("completed_at")
    return {
        "job_id": job.metadata.uid,
        "status": "cancelled" if done else "cancelling",
        "cancelled_at": stamps.get("cancelled_at") or (completed if done else None),
        "iterations_completed": int(iterations if iterations is not None else status.current_iteration or 0),
        "checkpoint_saved": info.checkpoint_saved if info else None,
        "checkpoint_id": info.checkpoint_id if info else None,
        "reason": (info.reason if info else None) or (job.spec.cancel.reason if job.spec.cancel else None),
    }


def checkpoint_ids(job: CachedTrainingJob) -> set[str]:
    ids = {c.id for c in job.status.checkpoints or []}
    if job.status.best_checkpoint_id:
        ids.add(job.status.best_checkpoint_id)
    return ids


@dataclass(frozen=True)
class CachedJob:
    """One TrainingJob as the cache holds it, with its get_status view computed once per change."""

    uid: str
    namespace: str
    name: str
    agent_id: str
    phase: TrainingPhase | None
    created_at: str
    obj: CachedTrainingJob
    view: dict[str, Any]
    view_json: bytes  # get_status answers with these bytes: encoded once per change, not per request

    @classmethod
    def from_resource(cls, raw: dict[str, Any]) -> CachedJob | None:
        """The cached form of a resource; None (logged) for one the models reject, which the CRD's
        schema makes impossible short of a version skew."""
        try:
            job = CachedTrainingJob.model_validate(raw)
        except ValidationError as exc:
            meta = raw.get("metadata") or {}
            log.warning(
                "TrainingJob %s/%s left out of the cache: %s", meta.get("namespace"), meta.get("name"), exc
            )
            return None
        meta = job.metadata
        view = status_view(job)
        return cls(
            uid=meta.uid or "",
            namespace=meta.namespace or "",
            name=meta.name or "",
            agent_id=job.spec.agent_id,
            phase=job.status.phase,
            created_at=meta.creation_timestamp or "",
            obj=job,
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
        return self.obj.spec.cancel is not None and self.obj.spec.cancel.requested
