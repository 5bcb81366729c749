"""The TrainingJob controller's I/O: observe (TrainingJob, Job), `decide`, then converge —
children, Job suspension, status (patched only when changed), Events and webhooks."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from agentcore.api.training import MIN_TRAINING_QUERIES, TrainingPhase
from agentcore.controllers.common.batchjob import changed_fields
from agentcore.controllers.common.config import OperatorConfig
from agentcore.controllers.common.events import post_event
from agentcore.controllers.trainingjob import children
from agentcore.controllers.trainingjob.decide import Notification, decide
from agentcore.controllers.trainingjob.webhooks import Delivery, WebhookDispatcher, idempotency_key
from agentcore.datasources import DataSourceError, load_queries
from agentcore.kube.client import JOBS, SECRETS, SERVICEACCOUNTS, ApiError, KubeClient, Resource
from agentcore.kube.client import TRAININGJOB_RESOURCE as TRAININGJOBS

log = logging.getLogger("agentcore.operator")

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")

RECONCILE_SECONDS = Histogram("agentcore_reconcile_seconds", "TrainingJob reconcile latency")
RECONCILE_ERRORS = Counter("agentcore_reconcile_errors_total", "Failed TrainingJob reconciles")
JOBS_BY_PHASE = Gauge("agentcore_trainingjobs", "TrainingJobs by phase", ["phase"])

Obj = dict[str, Any]


class TrainingJobReconciler:
    def __init__(
        self,
        kube: KubeClient,
        config: OperatorConfig,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kube = kube
        self.config = config
        self.clock = clock
        self.webhooks = WebhookDispatcher(self._delivered, config.webhook_timeout, config.webhook_retries)
        self._locks: dict[str, asyncio.Lock] = {}
        self._outstanding: dict[tuple[str, str], tuple[int, Notification]] = {}

    # -- entry points ----------------------------------------------------------------------------
    async def reconcile(self, namespace: str, name: str) -> None:
        started = time.monotonic()
        async with self._locks.setdefault(f"{namespace}/{name}", asyncio.Lock()):
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

    async def resync(self) -> None:
        """Level-triggered safety net: reconcile every TrainingJob (after restarts, missed events)."""
        namespaces = self.config.namespaces or (None,)
        phases: dict[str, int] = {p.value: 0 for p in TrainingPhase}
        for ns in namespaces:
            listing = await self.kube.list(TRAININGJOBS, ns)
            for tj in listing.get("items", []):
                phase = (tj.get("status") or {}).get("phase") or TrainingPhase.QUEUED.value
                phases[phase] = phases.get(phase, 0) + 1
                try:
                    await self.reconcile(tj["metadata"]["namespace"], tj["metadata"]["name"])
                except Exception:
                    log.exception(
                        "resync of %s/%s failed", tj["metadata"]["namespace"], tj["metadata"]["name"]
                    )
        for phase, count in phases.items():
            JOBS_BY_PHASE.labels(phase).set(count)

    # -- one pass -------------------------------------------------------------------------------
    async def _reconcile(self, namespace: str, name: str) -> None:
        tj = await self._get(TRAININGJOBS, name, namespace)
        if tj is None or tj["metadata"].get("deletionTimestamp"):
            return
        job = await self._get(JOBS, children.child_name(tj), namespace)
        phase = (tj.get("status") or {}).get("phase")
        terminal = phase is not None and TrainingPhase(phase).is_terminal
        data_error = None if job is not None or terminal else await self._validate(tj)
        decision = decide(tj, job, data_error, self.clock())
        if decision.want_job and job is None:
            job = await self._create_children(tj)
        if (
            decision.suspend_job is not None
            and job is not None
            and bool(job["spec"].get("suspend")) != decision.suspend_job
        ):
            await self.kube.patch(
                JOBS, job["metadata"]["name"], {"spec": {"suspend": decision.suspend_job}}, namespace
            )
        status = tj.get("status") or {}
        patch = changed_fields(status, decision.status)
        if patch:
            tj = await self.kube.patch(TRAININGJOBS, name, {"status": patch}, namespace, sub="status")
            if "phase" in patch and patch["phase"] != status.get("phase"):
                await self.post_event(
                    tj,
                    "Warning" if patch["phase"] == "Failed" else "Normal",
                    f"Phase{patch['phase']}",
                    decision.status.get("message") or f"TrainingJob is {patch['phase']}",
                )
        await self._notify(tj, decision.notifications)

    async def _validate(self, tj: Obj) -> str | None:
        spec, ns = tj["spec"], tj["metadata"]["namespace"]
        try:
            queries = await load_queries(spec["trainingData"], ns, self.kube)
            if len(queries) < MIN_TRAINING_QUERIES:
                return (
                    f"trainingData holds {len(queries)} queries; at least {MIN_TRAINING_QUERIES} are required"
                )
            if spec.get("evaluationData"):
                await load_queries(spec["evaluationData"], ns, self.kube)
        except DataSourceError as exc:
            return f"training data: {exc}"
        return None

    async def _create_children(self, tj: Obj) -> Obj:
        ns = tj["metadata"]["namespace"]
        for res, manifest in (
            (SERVICEACCOUNTS, children.service_account(tj)),
            (ROLES, children.role(tj)),
            (ROLEBINDINGS, children.role_binding(tj)),
            (SECRETS, children.secret(tj, self.config)),
        ):
            await self._create(res, manifest, ns)
        job = await self._create(JOBS, children.job(tj, self.config), ns)
        await self.post_event(tj, "Normal", "TrainerJobCreated", f"created Job {job['metadata']['name']}")
        return job

    async def _create(self, res: Resource, manifest: Obj, ns: str) -> Obj:
        try:
            return await self.kube.create(res, manifest, ns)
        except ApiError as exc:
            if exc.status != 409:
                raise
            return await self.kube.get(res, manifest["metadata"]["name"], ns)

    async def _get(self, res: Resource, name: str, ns: str) -> Obj | None:
        try:
            return await self.kube.get(res, name, ns)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    # -- notifications ----------------------------------------------------------------------------
    async def _notify(self, tj: Obj, due: list[Notification]) -> None:
        status = tj.get("status") or {}
        done = set(status.get("notifiedEvents") or [])
        progress_done = int(status.get("notifiedProgressIteration") or 0)
        uid = tj["metadata"]["uid"]
        for note in due:
            if (
                note.key in done
                or 0 < _progress_of(note) <= progress_done
                or (uid, note.key) in self._outstanding
            ):
                continue
            hooks = [h for h in tj["spec"].get("webhooks") or [] if note.event.value in h.get("events", [])]
            if not hooks:
                await self._record(tj, note, [])
                continue
            self._outstanding[(uid, note.key)] = (len(hooks), note)
            for hook in hooks:
                payload = {
                    "event": note.event.value,
                    "timestamp": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "data": note.data,
                }
                self.webhooks.submit(
                    Delivery(
                        f"{tj['metadata']['namespace']}/{tj['metadata']['name']}",
                        idempotency_key(uid, note.key, hook["url"]),
                        hook["url"],
                        note.event.value,
                        {**payload, "note_key": note.key},
                        await self._secret(tj, hook),
                    )
                )

    async def _delivered(self, delivery: Delivery, ok: bool, detail: str) -> None:
        ns, name = delivery.job_key.split("/", 1)
        key = str(delivery.payload.get("note_key"))
        tj = await self._get(TRAININGJOBS, name, ns)
        if tj is None:
            return
        if not ok:
            await self.post_event(
                tj, "Warning", "WebhookFailed", f"{delivery.event} to {delivery.url}: {detail}"
            )
        slot = (tj["metadata"]["uid"], key)
        remaining, note = self._outstanding.get(slot, (1, _note_stub(key, delivery)))
        if remaining > 1:
            self._outstanding[slot] = (remaining - 1, note)
            return
        async with self._locks.setdefault(delivery.job_key, asyncio.Lock()):
            fresh = await self._get(TRAININGJOBS, name, ns)
            if fresh is not None:
                await self._record(fresh, note, [detail])
        self._outstanding.pop(slot, None)

    async def _record(self, tj: Obj, note: Notification, details: list[str]) -> None:
        """Mark a notification done in status (so no restart repeats it) and post its Event."""
        status = tj.get("status") or {}
        iteration = _progress_of(note)
        if iteration:
            patch: Obj = {
                "notifiedProgressIteration": max(iteration, int(status.get("notifiedProgressIteration") or 0))
            }
        else:
            patch = {"notifiedEvents": sorted(set(status.get("notifiedEvents") or []) | {note.key})}
        ns, name = tj["metadata"]["namespace"], tj["metadata"]["name"]
        tj.setdefault("status", {}).update(patch)
        await self.kube.patch(TRAININGJOBS, name, {"status": patch}, ns, sub="status")
        if note.reason:
            await self.post_event(tj, note.event_type, note.reason, note.message or note.key)

    async def _secret(self, tj: Obj, hook: Obj) -> bytes | None:
        ref = hook.get("secretRef")
        if not ref:
            return None
        obj = await self._get(SECRETS, ref["name"], tj["metadata"]["namespace"])
        value = ((obj or {}).get("data") or {}).get(ref["key"])
        return base64.b64decode(value) if value else None

    async def post_event(self, tj: Obj, kind: str, reason: str, message: str) -> None:
        await post_event(self.kube, tj, kind, reason, message, self.clock())


def _progress_of(note: Notification) -> int:
    prefix = "training.job.progress:"
    return int(note.key[len(prefix) :]) if note.key.startswith(prefix) else 0


def _note_stub(key: str, delivery: Delivery) -> Notification:
    from agentcore.api.training import WebhookEvent

    return Notification(
        key,
        WebhookEvent(delivery.event),
        {},
        reason="WebhookDelivered",
        message=f"{delivery.event} delivered to {delivery.url}",
    )
