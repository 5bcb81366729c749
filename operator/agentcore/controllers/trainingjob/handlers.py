"""kopf wiring: thin handlers that hand every observed change to the reconciler.

kopf's own bookkeeping goes to annotations (never the user-visible status); there are no delete
handlers or timers, so kopf adds no finalizer: deleting a TrainingJob deletes its Job, pods,
RBAC and Secret through owner references. A periodic resync (our own task, not a kopf timer,
which would force a finalizer) makes the controller level-triggered across restarts.

Only the leader reconciles (`memo.leader`, see controllers/main.py): a standby's handlers return at
once, and its resync starts the moment it is elected, which catches up on what it ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from agentcore.api import labels
from agentcore.api.common import GROUP, VERSION
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.common.store import operator_store
from agentcore.controllers.leader.elector import LeaderElector, NotLeader
from agentcore.controllers.trainingjob.children import LABEL_TRAININGJOB
from agentcore.controllers.trainingjob.reconciler import TrainingJobReconciler
from agentcore.kube import config as kubeconfig

log = logging.getLogger("agentcore.operator")
PREFIX = labels.KOPF_PREFIX


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/operator"
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    config = memo.get("config") or OperatorConfig.from_env()
    memo.config = config
    settings.queueing.worker_limit = config.max_concurrent_reconciles
    settings.batching.idle_timeout = 1.0  # an idle worker holds one of those slots meanwhile
    if config.namespaces:
        # Namespaced RBAC cannot list namespaces or CRDs cluster-wide; the resources are known.
        settings.scanning.disabled = True
    memo.kube = memo.leader.fenced_client()
    memo.reconciler = TrainingJobReconciler(memo.kube, config, store=operator_store(config))
    memo.resync_task = asyncio.create_task(
        _resync_forever(memo.reconciler, memo.leader, config.resync_seconds)
    )


@kopf.on.login()
async def login(**_: Any) -> kopf.ConnectionInfo:
    """Credentials from $KUBECONFIG (the node agent's per-pod seam), the in-cluster account or
    ~/.kube/config, exec plugins included; kopf logs in again when the token expires."""
    return await kubeconfig.connection_info()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("resync_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if memo.get("reconciler") is not None:
        await memo.reconciler.webhooks.close()
    if memo.get("kube") is not None:
        await memo.kube.close()


async def _resync_forever(reconciler: TrainingJobReconciler, leader: LeaderElector, every: float) -> None:
    await leader.elected.wait()
    while leader.leading:
        try:
            await reconciler.resync()
        except NotLeader:
            return
        except Exception:
            log.exception("resync failed")
        await asyncio.sleep(every)


@kopf.on.event(GROUP, VERSION, "trainingjobs")
async def trainingjob_changed(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if memo.get("reconciler") is None:
        return
    # Stores and forgetting are in memory: standbys keep them current too (that is what keeps
    # them warm); only the leader reconciles.
    if type == "DELETED":
        memo.reconciler.forget(body.metadata.namespace, body.metadata.name, body.metadata.uid)
        if memo.leader.leading:  # a deletion no leader saw is for the resync's sweep
            await memo.reconciler.staging.drop(body.metadata.namespace or "", body.metadata.uid or "")
        return
    memo.reconciler.observe_trainingjob(dict(body))  # the reconcile reads it from there, no GET
    if memo.leader.leading:
        with contextlib.suppress(NotLeader):  # the lease ran out mid-reconcile: the next leader redoes it
            await memo.reconciler.reconcile(body.metadata.namespace, body.metadata.name)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_TRAININGJOB: kopf.PRESENT})
async def trainer_job_changed(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if memo.get("reconciler") is None:
        return
    owner = _owner_name(body)
    if type == "DELETED":
        memo.reconciler.forget_job(body.metadata.namespace, owner)
    else:
        memo.reconciler.observe_job(dict(body), owner)
    if memo.leader.leading:
        with contextlib.suppress(NotLeader):
            await memo.reconciler.reconcile(body.metadata.namespace, owner)


def _owner_name(body: kopf.Body) -> str:
    # The owner reference, not the label: a long name's label value is shortened (children.name_label).
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "TrainingJob":
            return str(ref["name"])
    return str(body.metadata.labels[LABEL_TRAININGJOB])
