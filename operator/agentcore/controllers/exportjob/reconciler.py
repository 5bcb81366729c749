"""The ExportJob controller's I/O: per namespace (the tenant, whose queue is shared), observe the
ExportJobs and their Jobs, `plan_queue` + `decide`, then converge — key Secret, children, Job
suspension on cancel, status (patched only when changed), Events.

Export pods run in the platform namespace (children.py): their Jobs are found there by the labels
naming the ExportJob's namespace and uid, and, since no owner reference crosses namespaces, deleted
here — at once when the ExportJob's deletion is seen, and by the sweep for any whose ExportJob uid no
longer exists (an ExportJob deleted while the operator was down).

The sweep deletes what expired: a Completed export's file and resource after status.output.expiresAt,
a Failed or Cancelled export's resource after the same retention, and files whose ExportJob is gone
(deleted with kubectl, say). It runs from the operator's own periodic task, not a kopf timer: a timer
would make kopf put a finalizer on every ExportJob.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

from agentcore.api import labels
from agentcore.api.batchjob import BatchJob, jobs_by_owner
from agentcore.api.exports import (
    ExportEventReason,
    ExportFormat,
    ExportJob,
    ExportJobStatus,
    ExportPhase,
    PrivacyLevel,
    parse_exportjobs,
)
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.common.create import ChildConflict, create_or_get
from agentcore.controllers.common.events import post_event
from agentcore.controllers.common.jobs import set_suspend
from agentcore.controllers.exportjob import children
from agentcore.controllers.exportjob.decide import Event, changed_fields, decide, fail
from agentcore.exports.approval import refusal, verified
from agentcore.exports.keys import ensure_key_secret
from agentcore.exports.queue import Slot, plan_queue
from agentcore.exports.settings import EXPORT_PREFIX, LABEL_EXPORTJOB, ExportSettings, key_from_ref
from agentcore.kube.client import (
    EXPORTJOB_RESOURCE,
    JOBS,
    ROLEBINDINGS,
    ROLES,
    SECRETS,
    SERVICEACCOUNTS,
    ApiError,
    KubeClient,
    Resource,
)
from agentcore.storage.objectstore import ObjectStore

log = logging.getLogger("agentcore.operator.exports")


RECONCILE_SECONDS = Histogram("agentcore_export_reconcile_seconds", "ExportJob namespace reconcile latency")
EXPIRED = Counter("agentcore_exports_expired_total", "Expired exports cleaned up")
# Counted when the operator posts the export's final Event (once per transition it observes), so a
# dashboard's rate() of these is the platform's export throughput.
FINISHED = Counter(
    "agentcore_exports_finished_total", "ExportJobs that reached a final phase", ["format", "reason"]
)
ROWS = Counter("agentcore_export_rows_total", "Rows written by completed exports", ["format"])
BYTES = Counter("agentcore_export_bytes_total", "Bytes of the files of completed exports", ["format"])
for _format in ExportFormat:  # at 0 from the start, so rate() and increase() see the first export
    ROWS.labels(_format.value)
    BYTES.labels(_format.value)
    for _reason in (ExportEventReason.COMPLETED, ExportEventReason.FAILED, ExportEventReason.CANCELLED):
        FINISHED.labels(_format.value, _reason.value)

Obj = dict[str, Any]
# What the operator deletes in the platform namespace per export (the Secret goes with its
# ServiceAccount, its owner, and the pod with its Job).
PLATFORM_KINDS: tuple[Resource, ...] = (JOBS, SERVICEACCOUNTS)


def jobs_by_exportjob(items: list[Obj], uids: dict[str, str | None]) -> dict[str, BatchJob]:
    """Platform-namespace Jobs keyed by their ExportJob's name, only where the uid label is that very
    ExportJob's (a deleted namesake's Job is not this one's). Only the operator can create Jobs in
    the platform namespace, so the labels are trustworthy there."""
    jobs: dict[str, BatchJob] = {}
    by_uid = {uid: name for name, uid in uids.items() if uid}
    for item in items:
        job = BatchJob.parse(item)
        name = by_uid.get(job.metadata.label(labels.EXPORTJOB_UID) or "")
        if name is not None:
            jobs[name] = job
    return jobs


class ExportJobReconciler:
    def __init__(
        self,
        kube: KubeClient,
        config: OperatorConfig,
        settings: ExportSettings,
        store: ObjectStore | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kube, self.config, self.settings, self.store, self.clock = kube, config, settings, store, clock
        self._locks: dict[str, asyncio.Lock] = {}
        self.platform = config.platform_ns()

    # -- reconcile -----------------------------------------------------------------------------
    async def reconcile_namespace(self, namespace: str) -> None:
        started = time.monotonic()
        async with self._locks.setdefault(namespace, asyncio.Lock()):
            try:
                await self._reconcile_namespace(namespace)
            except ApiError as exc:
                if exc.status != 409:  # a concurrent writer: the next event reconciles again
                    raise
                log.info("conflict reconciling exports in %s; will retry", namespace)
            finally:
                RECONCILE_SECONDS.observe(time.monotonic() - started)

    async def _reconcile_namespace(self, namespace: str) -> None:
        exportjobs = parse_exportjobs((await self.kube.list(EXPORTJOB_RESOURCE, namespace)).get("items", []))
        if not exportjobs:
            return
        selector = children.platform_selector(namespace)
        listing = await self.kube.list(JOBS, self.platform, labelSelector=selector)
        uids = {ej.name: ej.metadata.uid for ej in exportjobs}
        jobs = jobs_by_exportjob(listing.get("items", []), uids)
        jobs |= await self._legacy_jobs(namespace, [ej for ej in exportjobs if ej.name not in jobs])
        slots = plan_queue(exportjobs, set(jobs), self.settings.max_concurrent)
        for ej in exportjobs:
            if ej.metadata.deletion_timestamp:
                continue
            await self._reconcile_one(ej, jobs.get(ej.name), slots.get(ej.name, Slot()))

    async def _legacy_jobs(self, namespace: str, without_job: list[ExportJob]) -> dict[str, BatchJob]:
        """Export Jobs that an operator from before the platform namespace ran in the tenant's
        namespace, for exports still in flight when it was upgraded. They are adopted: decided on
        and cancelled like a platform Job, and no second export pod is started for them. Only
        Jobs this very ExportJob controls count (owner uid). A tenant who plants one delays only
        its own export. Listed only while an unfinished export has no platform Job."""
        waiting = {ej.name: ej.metadata.uid for ej in without_job if not ej.phase.is_terminal}
        if not waiting:
            return {}
        listing = await self.kube.list(JOBS, namespace, labelSelector=LABEL_EXPORTJOB)
        return jobs_by_owner(listing.get("items", []), "ExportJob", waiting)

    async def _reconcile_one(self, ej: ExportJob, job: BatchJob | None, slot: Slot) -> None:
        decision = decide(ej, job, slot, self.clock(), self._created_by_verified(ej))
        if decision.create_job:
            problem = self._unapproved(ej)
            try:
                if problem is None:
                    job = await self._create_children(ej)
            except ChildConflict as exc:  # fail the export with the reason rather than retry forever
                problem = str(exc)
            if problem is not None:
                failed = fail(decision.status, problem, self.clock())
                patch = changed_fields(ej.observed_status, failed)
                await self.kube.patch(
                    EXPORTJOB_RESOURCE, ej.name, {"status": patch}, ej.namespace, sub="status"
                )
                return
        if decision.suspend_job and job is not None:
            where = job.metadata.namespace or self.platform  # a legacy Job is in the tenant's
            await set_suspend(self.kube, job, True, where)
        patch = changed_fields(ej.observed_status, decision.status)
        if patch:
            await self.kube.patch(EXPORTJOB_RESOURCE, ej.name, {"status": patch}, ej.namespace, sub="status")
        for event in decision.events:
            await self.post_event(ej, event)
            _count_finished(ej, decision.status, event)

    def _created_by_verified(self, ej: ExportJob) -> bool:
        # Without the admission policy (require_approval) only the API server's signature vouches.
        key = self.settings.approval_key.get_secret_value()
        return not self.settings.require_approval or verified(key, ej)

    def _unapproved(self, ej: ExportJob) -> str | None:
        """Installs without the admission policy run a full export only as the API server
        approved it (exports/approval.py): why this one may not start, naming the annotation."""
        if not self.settings.require_approval:
            return None
        return refusal(self.settings.approval_key.get_secret_value(), ej)

    async def _create_children(self, ej: ExportJob) -> BatchJob:
        ns = ej.namespace
        full = ej.spec.config.privacy_level == PrivacyLevel.FULL
        if not full and await ensure_key_secret(self.kube, ns):
            log.info("created the pseudonymisation key Secret in %s", ns)
        # The tenant-namespace Role and RoleBinding first: a pod whose access is missing would fail.
        await create_or_get(self.kube, ROLES, children.role(ej), ns)
        await create_or_get(self.kube, ROLEBINDINGS, children.role_binding(ej, self.platform), ns)
        p = self.platform
        account = await self._create_platform(SERVICEACCOUNTS, children.service_account(ej, p))
        uid = (account.get("metadata") or {}).get("uid", "")
        await self._create_platform(SECRETS, children.secret(ej, self.config, p, uid))
        return BatchJob.parse(await self._create_platform(JOBS, children.job(ej, self.settings, p)))

    async def _create_platform(self, res: Resource, manifest: Obj) -> Obj:
        """Create in the platform namespace; if it exists (409, a retry of our own create), the
        existing one only when its uid label names the same ExportJob — there is no owner
        reference to compare across namespaces."""
        try:
            created: Obj = await self.kube.create(res, manifest, self.platform)
            return created
        except ApiError as exc:
            if exc.status != 409:
                raise
        name = manifest["metadata"]["name"]
        existing: Obj = await self.kube.get(res, name, self.platform)
        want = manifest["metadata"]["labels"][labels.EXPORTJOB_UID]
        if ((existing.get("metadata") or {}).get("labels") or {}).get(labels.EXPORTJOB_UID) != want:
            raise ChildConflict(
                f"{res.plural} {self.platform}/{name} already exists for another ExportJob; "
                "the operator deletes it once that ExportJob is gone"
            )
        return existing

    async def resync(self) -> None:
        """Level-triggered safety net: every namespace that has ExportJobs."""
        for ns in sorted({ej.namespace for ej in await self._all_exportjobs()}):
            try:
                await self.reconcile_namespace(ns)
            except Exception:
                log.exception("export resync of %s failed", ns)

    async def _all_exportjobs(self) -> list[ExportJob]:
        items: list[Obj] = []
        for ns in self.config.namespaces or (None,):
            items += (await self.kube.list(EXPORTJOB_RESOURCE, ns)).get("items", [])
        return parse_exportjobs(items)

    # -- expiry -----------------------------------------------------------------------------------
    async def sweep(self) -> None:
        # Objects are listed before the ExportJobs: an object whose ExportJob is missing from the
        # later listing really lost its owner (a new export cannot have uploaded it yet).
        keys = await asyncio.to_thread(self.store.list, EXPORT_PREFIX + "/") if self.store else []
        platform = await self._platform_objects()
        exportjobs = await self._all_exportjobs()
        now = self.clock()
        for ej in exportjobs:
            if self._expired(ej, now):
                await self._expire(ej)
        live = {(ej.namespace, ej.export_id) for ej in exportjobs}
        for key in keys:
            await self._drop_orphan(key, live)
        await self._drop_orphaned_objects(platform, {ej.metadata.uid for ej in exportjobs})

    # -- the platform namespace ---------------------------------------------------------------------
    async def _platform_objects(self, selector: str | None = None) -> list[tuple[Resource, Obj]]:
        found: list[tuple[Resource, Obj]] = []
        for res in PLATFORM_KINDS:
            selected = selector or children.platform_selector()
            listing = await self.kube.list(res, self.platform, labelSelector=selected)
            found += [(res, item) for item in listing.get("items", [])]
        return found

    async def _drop_orphaned_objects(
        self, objects: list[tuple[Resource, Obj]], live: set[str | None]
    ) -> None:
        """Listed before the ExportJobs: an object whose uid is missing from the later listing lost
        its ExportJob (the operator creates them only for an ExportJob it has seen)."""
        for res, item in objects:
            meta = item.get("metadata") or {}
            item_labels = meta.get("labels") or {}
            ns = item_labels.get(labels.EXPORTJOB_NAMESPACE, "")
            if self.config.namespaces and ns not in self.config.namespaces:
                continue  # another operator's tenant
            if item_labels.get(labels.EXPORTJOB_UID) not in live:
                name = meta.get("name", "")
                await self._delete_quietly(res, name)
                log.info("deleted %s %s/%s: its ExportJob is gone", res.plural, self.platform, name)

    async def forget(self, uid: str) -> None:
        """An ExportJob was deleted: its pod, Job, ServiceAccount and (owned by that) Secret go too."""
        selector = f"{children.platform_selector()},{labels.EXPORTJOB_UID}={uid}"
        for res, item in await self._platform_objects(selector):
            await self._delete_quietly(res, (item.get("metadata") or {}).get("name", ""))

    async def _delete_quietly(self, res: Resource, name: str) -> None:
        try:  # Background: the Job's pods go with it
            await self.kube.delete(res, name, self.platform, propagationPolicy="Background")
        except ApiError as exc:
            if exc.status != 404:
                raise

    def _expired(self, ej: ExportJob, now: dt.datetime) -> bool:
        status = ej.observed_status
        if ej.phase == ExportPhase.COMPLETED:
            expires = status.output.expires_at if status.output else None
            return expires is not None and expires <= now
        if ej.phase in (ExportPhase.FAILED, ExportPhase.CANCELLED):
            done = status.timing.completed_at if status.timing else None
            keep = ej.spec.retention_seconds or self.settings.retention_seconds
            return done is not None and done + dt.timedelta(seconds=keep) <= now
        return False

    async def _expire(self, ej: ExportJob) -> None:
        ns, name = ej.namespace, ej.name
        output = ej.observed_status.output
        ref = output.file_ref if output else None
        if ref and self.store is not None:
            key = key_from_ref(self.store.uri, ref, ns, ej.export_id)
            if key:
                await asyncio.to_thread(self.store.delete, key)
        try:
            await self.kube.delete(EXPORTJOB_RESOURCE, name, ns, propagationPolicy="Background")
        except ApiError as exc:
            if exc.status != 404:
                raise
        EXPIRED.inc()
        log.info("export %s/%s expired: file and resource deleted", ns, name)

    async def _drop_orphan(self, key: str, live: set[tuple[str, str]]) -> None:
        parts = key.split("/")
        if len(parts) < 4 or parts[0] != EXPORT_PREFIX:
            return
        ns, export_id = parts[1], parts[2]
        if self.config.namespaces and ns not in self.config.namespaces:
            return  # another operator's tenant
        if (ns, export_id) not in live and self.store is not None:
            await asyncio.to_thread(self.store.delete, key)
            log.info("deleted export file %s: its ExportJob is gone", key)

    # -- events ------------------------------------------------------------------------------------
    async def post_event(self, ej: ExportJob, event: Event) -> None:
        await post_event(self.kube, ej.to_resource(), event.type, event.reason, event.message, self.clock())


def _count_finished(ej: ExportJob, status: ExportJobStatus, event: Event) -> None:
    """Count an export's final Event; `status` is the one just written (it holds the output)."""
    if event.reason not in _FINAL_REASONS:
        return
    fmt = ej.spec.config.format.value
    FINISHED.labels(fmt, event.reason).inc()
    output = status.output
    if event.reason == ExportEventReason.COMPLETED and output is not None:
        ROWS.labels(fmt).inc(output.row_count or 0)
        BYTES.labels(fmt).inc(output.file_size_bytes or 0)


_FINAL_REASONS = frozenset(
    {ExportEventReason.COMPLETED, ExportEventReason.FAILED, ExportEventReason.CANCELLED}
)
