"""kopf wiring for ExportJobs: thin event handlers that reconcile the ExportJob's namespace (its
tenant queue), and one periodic task for resync and the expiry sweep.

Only event handlers and our own task: kopf adds no finalizer. Deleting an ExportJob deletes its
tenant-namespace Role and RoleBinding through owner references; its Job, pod, ServiceAccount and
Secret in the platform namespace are deleted when the deletion is seen, and by the sweep otherwise
(the REST DELETE removes the file first; the sweep removes files whose ExportJob went another way).
Importing this module registers the handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kopf

from agentcore.api.common import GROUP, VERSION
from agentcore.api.labels import EXPORTJOB_NAMESPACE
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.common.store import operator_store
from agentcore.controllers.exportjob.reconciler import ExportJobReconciler
from agentcore.controllers.leader.elector import LeaderElector, NotLeader
from agentcore.exports.settings import LABEL_EXPORTJOB, ExportSettings
from agentcore.kube.client import ApiError

log = logging.getLogger("agentcore.operator.exports")


@kopf.on.startup()
async def exports_startup(memo: kopf.Memo, **_: Any) -> None:
    config = memo.get("config") or OperatorConfig.from_env()
    settings = ExportSettings.from_env()
    memo.export_kube = memo.leader.fenced_client()
    memo.export_reconciler = ExportJobReconciler(memo.export_kube, config, settings, operator_store(config))
    memo.export_task = asyncio.create_task(
        _maintain(memo.export_reconciler, memo.leader, config.resync_seconds, settings.sweep_seconds)
    )


@kopf.on.cleanup()
async def exports_cleanup(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("export_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if memo.get("export_kube") is not None:
        await memo.export_kube.close()


async def _maintain(
    reconciler: ExportJobReconciler, leader: LeaderElector, resync_every: float, sweep_every: float
) -> None:
    """Resync and sweep while leading (the sweep's object-store deletes are gated by the same check,
    made before each pass: only the leader's kube writes are fenced one by one)."""
    await leader.elected.wait()
    last_sweep = 0.0
    while leader.leading:
        try:
            await reconciler.resync()
            if time.monotonic() - last_sweep >= sweep_every and leader.leading:
                await reconciler.sweep()
                last_sweep = time.monotonic()
        except NotLeader:
            return
        except ApiError as exc:  # e.g. 429 while the apiserver (re)initialises: next round
            log.warning("export resync/sweep: %s", exc)
        except Exception:
            log.exception("export resync/sweep failed")
        await asyncio.sleep(min(resync_every, sweep_every))


def _leading(memo: kopf.Memo) -> bool:
    return memo.get("export_reconciler") is not None and memo.leader.leading


@kopf.on.event(GROUP, VERSION, "exportjobs")
async def exportjob_changed(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    # Deletions matter too: a deleted export frees a slot in its namespace's queue.
    watched = memo.export_reconciler.config.namespaces if _leading(memo) else ()
    if watched and body.metadata.namespace not in watched:
        return  # kopf also watches the platform namespace (for export Jobs): not a tenant here
    if _leading(memo):
        with contextlib.suppress(NotLeader):  # the lease ran out: the next leader redoes it
            if event.get("type") == "DELETED" and body.metadata.uid:
                await memo.export_reconciler.forget(body.metadata.uid)
            await memo.export_reconciler.reconcile_namespace(body.metadata.namespace)


_EXPORT_JOB_LABELS = {LABEL_EXPORTJOB: kopf.PRESENT, EXPORTJOB_NAMESPACE: kopf.PRESENT}


@kopf.on.event("batch", "v1", "jobs", labels=_EXPORT_JOB_LABELS)
async def export_job_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Export Jobs live in the platform namespace; the label names the ExportJob's (tenant) one.
    if not _leading(memo):
        return
    reconciler: ExportJobReconciler = memo.export_reconciler
    if body.metadata.namespace != reconciler.platform:
        return  # a label anyone could set on a Job elsewhere does not count
    with contextlib.suppress(NotLeader):
        await reconciler.reconcile_namespace(body.metadata.labels[EXPORTJOB_NAMESPACE])
