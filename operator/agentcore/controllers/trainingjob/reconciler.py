"""The TrainingJob controller's I/O: observe (TrainingJob, Job), `decide`, then converge —
children, Job suspension, status (patched only when changed), Events and webhooks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from agentcore.api.batchjob import BatchJob
from agentcore.api.training import (
    MIN_TRAINING_QUERIES,
    TrainerReport,
    TrainerState,
    TrainingJob,
    TrainingJobStatus,
    TrainingPhase,
    Webhook,
    WebhookEvent,
)
from agentcore.api.training import TrainingReason as Reason
from agentcore.controllers.common.cache import Store
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.common.create import ChildConflict, create_or_get, create_workload
from agentcore.controllers.common.events import involved_object, post_event, post_event_once
from agentcore.controllers.common.jobs import set_suspend
from agentcore.controllers.trainingjob import children
from agentcore.controllers.trainingjob.decide import Notification, decide, status_patch
from agentcore.controllers.trainingjob.staging import SecretDataStager
from agentcore.controllers.trainingjob.webhooks import (
    Delivery,
    WebhookDispatcher,
    idempotency_key,
    shown_url,
)
from agentcore.datasources import DataSourceError, count_queries, unlabelled_secret, usable_secret
from agentcore.kube.client import JOBS, SECRETS, SERVICES, ApiError, KubeClient, Resource
from agentcore.kube.client import TRAININGJOB_RESOURCE as TRAININGJOBS
from agentcore.storage.objectstore import ObjectStore

log = logging.getLogger("agentcore.operator")


RECONCILE_SECONDS = Histogram("agentcore_reconcile_seconds", "TrainingJob reconcile latency")
RECONCILE_ERRORS = Counter("agentcore_reconcile_errors_total", "Failed TrainingJob reconciles")
JOBS_BY_PHASE = Gauge("agentcore_trainingjobs", "TrainingJobs by phase", ["phase"])
OLDEST_QUEUED = Gauge(
    "agentcore_trainingjob_oldest_queued_seconds", "Age of the oldest TrainingJob still Queued (0: none)"
)
# Counted when the operator posts a job's final phase Event, i.e. once per job and operator process
# (a new leader re-posting an Event that exists counts it again: at least once).
FINISHED = Counter(
    "agentcore_trainingjobs_finished_total", "TrainingJobs that reached a final phase", ["phase", "reason"]
)
# Series exist from the start (at 0) so that the first increase() after a restart is seen: a
# series born at 1 has no earlier sample to rise from.
for _phase, _reason in (
    (TrainingPhase.COMPLETED, Reason.TRAINING_COMPLETE),
    (TrainingPhase.FAILED, Reason.BUDGET_EXCEEDED),
    (TrainingPhase.FAILED, Reason.VALIDATION_FAILED),
    (TrainingPhase.FAILED, Reason.TRAINER_EXITED_EARLY),
    (TrainingPhase.FAILED, Reason.JOB_FAILED),
    (TrainingPhase.CANCELLED, Reason.CANCELLED),
):
    FINISHED.labels(_phase.value, _reason.value)

Obj = dict[str, Any]


class TrainingJobReconciler:
    def __init__(
        self,
        kube: KubeClient,
        config: OperatorConfig,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        store: ObjectStore | None = None,
    ) -> None:
        self.kube = kube
        self.config = config
        self.clock = clock
        self.staging = SecretDataStager(store)
        self.webhooks = WebhookDispatcher(
            self._delivered,
            config.webhook_timeout,
            config.webhook_retries,
            allowed_networks=config.webhook_allowed_networks,
        )
        # Per job while someone holds or waits for it (pruned after: see _job_lock).
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}
        self._outstanding: dict[tuple[str, str], tuple[int, Notification]] = {}
        # What the watches and our own writes showed (see common/cache.py); Jobs under their
        # owner TrainingJob's name.
        self.trainingjobs: Store[TrainingJob] = Store(_parse)
        self.jobs: Store[BatchJob] = Store(BatchJob.model_validate)

    # -- watch events ------------------------------------------------------------------------------
    def observe_trainingjob(self, raw: Obj) -> None:
        try:
            self.trainingjobs.observe(raw)
        except ValidationError:
            # Not stored: the reconcile's GET reports the model/CRD drift once per event.
            meta = raw.get("metadata") or {}
            self.trainingjobs.forget(meta.get("namespace", ""), meta.get("name", ""))

    def observe_job(self, raw: Obj, owner: str) -> None:
        self.jobs.observe(raw, owner)

    def forget_job(self, namespace: str, owner: str) -> None:
        self.jobs.forget(namespace, owner)

    # -- entry points ----------------------------------------------------------------------------
    async def reconcile(self, namespace: str, name: str) -> None:
        started = time.monotonic()
        async with self._job_lock(f"{namespace}/{name}"):
            try:
                await self._reconcile(namespace, name)
            except ApiError as exc:
                if exc.status == 409:  # a concurrent writer: the next event reconciles again
                    log.info("conflict reconciling %s/%s; will retry", namespace, name)
                    return
                RECONCILE_ERRORS.inc()
                raise
            finally:
                RECONCILE_SECONDS.observe(time.monotonic() - started)

    @contextlib.asynccontextmanager
    async def _job_lock(self, key: str) -> AsyncIterator[None]:
        """One reconcile (or webhook record) per job at a time; the lock is dropped when no one
        holds or waits for it, so the map does not keep every job the operator ever saw."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] = self._lock_users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key], self._locks[key]

    def forget(self, namespace: str, name: str, uid: str | None) -> None:
        """The TrainingJob is deleted: drop what is stored of it and its outstanding webhook
        notifications (their deliveries find no job and record nothing)."""
        self.trainingjobs.forget(namespace, name)
        self.jobs.forget(namespace, name)
        for slot in [s for s in self._outstanding if s[0] == uid]:
            del self._outstanding[slot]
        log.debug("forgot %s/%s", namespace, name)

    async def resync(self) -> None:
        """Level-triggered safety net: reconcile every TrainingJob (after restarts, missed events)."""
        namespaces = self.config.namespaces or (None,)
        phases: dict[str, int] = {p.value: 0 for p in TrainingPhase}
        queued_ages: list[float] = []
        staged = await self.staging.staged(namespaces)  # before the jobs: see staged()
        live: set[tuple[str, str]] = set()
        for ns in namespaces:
            listing = await self.kube.list(TRAININGJOBS, ns)
            for tj in listing.get("items", []):
                live.add((tj["metadata"]["namespace"], tj["metadata"]["uid"]))
                self.observe_trainingjob(tj)
                phase = (tj.get("status") or {}).get("phase") or TrainingPhase.QUEUED.value
                phases[phase] = phases.get(phase, 0) + 1
                if phase == TrainingPhase.QUEUED.value:
                    queued_ages.append(_age(tj, self.clock()))
                try:
                    await self.reconcile(tj["metadata"]["namespace"], tj["metadata"]["name"])
                except Exception:
                    log.exception(
                        "resync of %s/%s failed", tj["metadata"]["namespace"], tj["metadata"]["name"]
                    )
        await self.staging.sweep(staged, live)
        for phase, count in phases.items():
            JOBS_BY_PHASE.labels(phase).set(count)
        OLDEST_QUEUED.set(max(queued_ages, default=0.0))

    # -- one pass -------------------------------------------------------------------------------
    # Events survive a crash at any point because each is (1) named after (job uid, event key), so
    # posting it twice is a 409 no-op, and (2) recorded in status.notifiedEvents only after it was
    # posted. A crash before the post leaves it unrecorded: the next pass posts it. A crash between
    # the post and the record makes the next pass post it again: a 409, then the record. Phase
    # Events are derived from the *persisted* phase, before and after this pass' status patch, so a
    # phase that reached the apiserver gets its Event even if the operator died right after the
    # patch and the job has since moved on to another phase.
    async def _reconcile(self, namespace: str, name: str) -> None:
        tj = self.trainingjobs.get(namespace, name) or await self._get_trainingjob(name, namespace)
        if tj is None or tj.metadata.deletion_timestamp:
            return
        job = await self._current_job(tj)
        tj = await self._with_final_report(tj, job)
        conflict = None
        if job is not None and not _owns(tj, job):
            # Someone else's Job holds the name: never read its state as ours.
            conflict, job = f"jobs {children.child_name(tj)!r} is not owned by this TrainingJob", None
        terminal = tj.status is not None and tj.status.phase is not None and tj.status.phase.is_terminal
        data_error = None if job is not None or terminal else conflict or await self._validate(tj)
        tj = await self._post_state_events(tj, job)
        decision = decide(tj, job, data_error, self.clock())
        if decision.want_job and job is None:
            try:
                job = await self._create_children(tj)
                decision = decide(tj, job, None, self.clock())  # the status that names the new Job
            # Fail the job with the reason rather than retry forever (a DataSourceError: the Secret
            # to stage changed since the checks).
            except (ChildConflict, DataSourceError) as exc:
                decision = decide(tj, None, str(exc), self.clock())
        await self._converge_suspend(tj, job, decision.suspend_job)
        tj = await self._write_status(tj, job, decision.status)
        await self._notify(tj, decision.notifications)

    async def _with_final_report(self, tj: TrainingJob, job: BatchJob | None) -> TrainingJob:
        """The TrainingJob as the apiserver holds it once its Job has ended, if the store still
        shows the trainer running. The trainer patches its final state before it exits, so the
        apiserver has that report by the time the Job ends, but the watch may not have brought it
        yet: deciding on the store's copy failed finished runs as TrainerExitedEarly (the chaos
        suite, seed 1001171259). One GET per ended Job, until the phase is terminal."""
        status = tj.status
        if job is None or job.finished is None or status is None:
            return tj
        if (status.phase and status.phase.is_terminal) or not _reports_running(status.trainer):
            return tj
        return await self._get_trainingjob(tj.metadata.name or "", tj.metadata.namespace or "") or tj

    async def _current_job(self, tj: TrainingJob) -> BatchJob | None:
        """The trainer Job from the store; a GET only for a job the operator may have created
        before (a fresh TrainingJob has none, and creating one anyway is safe: see create.py)."""
        ns, name = tj.metadata.namespace or "", tj.metadata.name or ""
        job = self.jobs.get(ns, name)
        if job is not None or tj.status is None:
            return job
        raw = await self._get(JOBS, children.child_name(tj), ns)
        return self.jobs.observe(raw, name) if raw is not None else None

    async def _write_status(
        self, tj: TrainingJob, job: BatchJob | None, desired: TrainingJobStatus
    ) -> TrainingJob:
        """One status write per pass: the operator's changed fields, and the keys of the Events
        of the state being written, posted first (named after (uid, key), so a crash between the
        post and this write makes the next pass's post a no-op; see above `_reconcile`)."""
        done = set(tj.status.notified_events or []) if tj.status else set()
        upcoming = tj.model_copy(update={"status": desired})
        posted = [
            e.key
            for e in state_events(upcoming, job)
            if e.key not in done and await self._post_once(upcoming, e)
        ]
        patch = status_patch(tj.status, desired)
        if posted:
            patch["notifiedEvents"] = sorted(done | set(posted))
        if not patch:
            return tj
        return await self._patch_status(tj, patch)

    async def _patch_status(self, tj: TrainingJob, patch: Obj) -> TrainingJob:
        meta = tj.metadata
        raw = await self.kube.patch(
            TRAININGJOBS, meta.name or "", {"status": patch}, meta.namespace, sub="status"
        )
        return self.trainingjobs.put(_parse(raw))

    async def _get_trainingjob(self, name: str, ns: str) -> TrainingJob | None:
        raw = await self._get(TRAININGJOBS, name, ns)
        if raw is None:
            return None
        try:
            return self.trainingjobs.put(_parse(raw))
        except ValidationError as exc:
            # The apiserver validated it against the CRD, so this is a model/CRD drift: report it
            # without crash-looping on every event.
            log.error("TrainingJob %s/%s does not match the API model: %s", ns, name, exc)
            RECONCILE_ERRORS.inc()
            return None

    async def _converge_suspend(self, tj: TrainingJob, job: BatchJob | None, suspend: bool | None) -> None:
        if suspend is None or job is None:
            return
        raw = await set_suspend(self.kube, job, suspend, tj.metadata.namespace or "")
        if raw is not None:
            self.jobs.observe(raw, tj.metadata.name)

    async def _validate(self, tj: TrainingJob) -> str | None:
        spec, ns = tj.spec, tj.metadata.namespace or ""
        refused = (
            self.config.image_refused(spec.image, ns)
            or children.reserved_label(tj)
            or self.staging.refused(tj)
            or await self._check_secret_refs(tj)
        )
        if refused:
            return refused
        try:
            count = await count_queries(spec.training_data.to_resource(), ns, self.kube)
            if count < MIN_TRAINING_QUERIES:
                return f"trainingData holds {count} queries; at least {MIN_TRAINING_QUERIES} are required"
            if spec.evaluation_data is not None:
                await count_queries(spec.evaluation_data.to_resource(), ns, self.kube)
        except DataSourceError as exc:
            return f"training data: {exc}"
        return None

    async def _check_secret_refs(self, tj: TrainingJob) -> str | None:
        """The first Secret reference that is missing or not labelled for TrainingJobs, as a
        message naming the field; checked before any data is read or any Role is created."""
        ns = tj.metadata.namespace or ""
        for field, ref in children.secret_refs(tj):
            obj = await self._get(SECRETS, ref.name, ns)
            if obj is None:
                return f"{field}: Secret {ref.name!r} not found"
            if not usable_secret(obj):
                return f"{field}: {unlabelled_secret(ref.name)}"
        return None

    async def _create_children(self, tj: TrainingJob) -> BatchJob:
        ns = tj.metadata.namespace or ""
        # No credentials Secret any more (the trainer uses the ingestion endpoint). A job created by
        # an older operator keeps its Secret until the job is deleted (owner reference): its Job's
        # pod template still loads it, and a retried pod without it would never start.
        access = [children.service_account(tj), children.role(tj), children.role_binding(tj)]
        await self.staging.stage(self.kube, tj)  # before the trainer can ask for it
        if children.distributed(tj):  # the ranks' DNS names exist before their pods do
            await create_or_get(self.kube, SERVICES, children.headless_service(tj), ns)
        # Its TrainerJobCreated Event is a state Event: posted once the Job is seen to exist.
        raw = await create_workload(self.kube, ns, access, children.job(tj, self.config))
        job = BatchJob.model_validate(raw)
        return self.jobs.put(job, tj.metadata.name) if _owns(tj, job) else job

    async def _get(self, res: Resource, name: str, ns: str) -> Obj | None:
        try:
            return await self.kube.get(res, name, ns)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    # -- Events of the persisted state -------------------------------------------------------------
    async def _post_state_events(self, tj: TrainingJob, job: BatchJob | None) -> TrainingJob:
        """Post the Events of what the apiserver holds (the Job exists, the phase), each once."""
        done = set(tj.status.notified_events or []) if tj.status else set()
        posted = [
            event.key
            for event in state_events(tj, job)
            if event.key not in done and await self._post_once(tj, event)
        ]
        if not posted:
            return tj
        return await self._record_keys(tj, posted)

    async def _post_once(self, tj: TrainingJob, event: OperatorEvent) -> bool:
        """True once the Event exists (or can never be posted); False to retry on a later pass."""
        try:
            await post_event_once(
                self.kube, _involved(tj), event.key, event.type, event.reason, event.message, self.clock()
            )
        except ApiError as exc:
            log.warning("could not post Event %s: %s", event.reason, exc)
            return not (exc.status >= 500 or exc.status == 429)
        _count_finished(tj, event)
        return True

    async def _record_keys(self, tj: TrainingJob, keys: list[str]) -> TrainingJob:
        done = set(tj.status.notified_events or []) if tj.status else set()
        return await self._patch_status(tj, {"notifiedEvents": sorted(done | set(keys))})

    # -- notifications ----------------------------------------------------------------------------
    async def _notify(self, tj: TrainingJob, due: list[Notification]) -> None:
        status = tj.status or TrainingJobStatus()
        done = set(status.notified_events or [])
        progress_done = status.notified_progress_iteration or 0
        uid = tj.metadata.uid or ""
        for note in due:
            if (
                note.key in done
                or 0 < _progress_of(note) <= progress_done
                or (uid, note.key) in self._outstanding
            ):
                continue
            hooks = [h for h in tj.spec.webhooks or [] if note.event in h.events]
            if not hooks:
                tj = await self._record(tj, note)
                continue
            self._outstanding[(uid, note.key)] = (len(hooks), note)
            for hook in hooks:
                await self._submit(tj, note, hook)

    async def _submit(self, tj: TrainingJob, note: Notification, hook: Webhook) -> None:
        payload = {
            "event": note.event.value,
            "timestamp": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": note.data,
        }
        self.webhooks.submit(
            Delivery(
                f"{tj.metadata.namespace}/{tj.metadata.name}",
                idempotency_key(tj.metadata.uid or "", note.key, hook.url),
                hook.url,
                note.event.value,
                {**payload, "note_key": note.key},
                await self._secret(tj, hook),
            )
        )

    async def _delivered(self, delivery: Delivery, ok: bool, detail: str) -> None:
        ns, name = delivery.job_key.split("/", 1)
        key = str(delivery.payload.get("note_key"))
        tj = await self._get_trainingjob(name, ns)
        if tj is None:
            return
        if not ok:
            await self.post_event(
                tj,
                "Warning",
                Reason.WEBHOOK_FAILED,
                f"{delivery.event} to {shown_url(delivery.url)}: {detail}",
            )
        slot = (tj.metadata.uid or "", key)
        remaining, note = self._outstanding.get(slot, (1, _note_stub(key, delivery)))
        if remaining > 1:
            self._outstanding[slot] = (remaining - 1, note)
            return
        async with self._job_lock(delivery.job_key):
            fresh = await self._get_trainingjob(name, ns)
            if fresh is not None:
                await self._record(fresh, note)
        self._outstanding.pop(slot, None)

    async def _record(self, tj: TrainingJob, note: Notification) -> TrainingJob:
        """Post the notification's Event, then mark it done in status (so no restart repeats it).

        In this order a crash loses nothing: the Event's name is derived from the notification's
        key, so the repeat after a restart is a no-op; see the argument above `_reconcile`.
        """
        if note.reason:
            event = OperatorEvent(note.key, note.event_type, note.reason, note.message or note.key)
            if not await self._post_once(tj, event):
                return tj
        status = tj.status or TrainingJobStatus()
        iteration = _progress_of(note)
        if not iteration:
            return await self._record_keys(tj, [note.key])
        patch = {"notifiedProgressIteration": max(iteration, status.notified_progress_iteration or 0)}
        return await self._patch_status(tj, patch)

    async def _secret(self, tj: TrainingJob, hook: Webhook) -> bytes | None:
        """The HMAC key, or None when the Secret or key is missing: the dispatcher then refuses."""
        ref = hook.secret_ref
        obj = await self._get(SECRETS, ref.name, tj.metadata.namespace or "")
        if obj is None or not usable_secret(obj):  # the label may have been removed since validation
            return None
        value = ((obj or {}).get("data") or {}).get(ref.key)
        return base64.b64decode(value) if value else None

    async def post_event(self, tj: TrainingJob, kind: str, reason: str, message: str) -> None:
        """Best-effort Event (no once-only identity), e.g. a failed webhook delivery."""
        involved = _involved(tj)
        obj = {"apiVersion": tj.api_version, "kind": tj.kind, "metadata": involved}
        await post_event(self.kube, obj, kind, reason, message, self.clock())


def _reports_running(trainer: TrainerReport | None) -> bool:
    return trainer is None or trainer.state == TrainerState.RUNNING


@dataclass(frozen=True)
class OperatorEvent:
    key: str  # once-only identity: names the Event and is recorded in status.notifiedEvents
    type: str
    reason: str
    message: str


def state_events(tj: TrainingJob, job: BatchJob | None) -> list[OperatorEvent]:
    """Events due for the state the apiserver holds: the trainer Job exists, the current phase."""
    due: list[OperatorEvent] = []
    if job is not None:
        due.append(
            OperatorEvent(
                "event.trainer-job-created",
                "Normal",
                Reason.TRAINER_JOB_CREATED,
                f"created Job {job.metadata.name or children.child_name(tj)}",
            )
        )
    phase = tj.status.phase if tj.status else None
    if phase is not None and tj.status is not None:
        due.append(
            OperatorEvent(
                f"event.phase:{phase.value}",
                "Warning" if phase == TrainingPhase.FAILED else "Normal",
                f"Phase{phase.value}",
                tj.status.message or f"TrainingJob is {phase.value}",
            )
        )
    return due


def _count_finished(tj: TrainingJob, event: OperatorEvent) -> None:
    status = tj.status
    if status is None or status.phase is None or not status.phase.is_terminal:
        return
    if event.key == f"event.phase:{status.phase.value}":
        FINISHED.labels(status.phase.value, status.reason or status.phase.value).inc()


def _age(raw: Mapping[str, Any], now: dt.datetime) -> float:
    created = (raw.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return 0.0
    return max(0.0, (now - dt.datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())


def _parse(raw: Mapping[str, Any]) -> TrainingJob:
    return TrainingJob.model_validate(raw)


def _owns(tj: TrainingJob, job: BatchJob) -> bool:
    owner = job.metadata.controller()
    return owner is not None and owner.uid == tj.metadata.uid


def _involved(tj: TrainingJob) -> Obj:
    meta = tj.metadata
    return involved_object(tj.api_version, tj.kind, meta.name or "", meta.namespace or "", meta.uid or "")


def _progress_of(note: Notification) -> int:
    prefix = "training.job.progress:"
    return int(note.key[len(prefix) :]) if note.key.startswith(prefix) else 0


def _note_stub(key: str, delivery: Delivery) -> Notification:
    return Notification(
        key,
        WebhookEvent(delivery.event),
        {},
        reason=Reason.WEBHOOK_DELIVERED,
        message=f"{delivery.event} delivered to {shown_url(delivery.url)}",
    )
