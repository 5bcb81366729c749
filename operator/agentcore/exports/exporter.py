"""`agentcore exporter`: the export pod's entry point.

Identity comes from the environment the operator sets (AGENTCORE_EXPORT_NAME / _NAMESPACE); the
database and object store from the per-export Secret, as for trainer pods. The pod reports its own
progress in the ExportJob status (Running, then Completed or Failed) under RBAC that allows only
this ExportJob's status.

Exit codes: 0 done (or nothing to do), 2 failed for a reason a retry cannot fix (reported in the
status; the Job's podFailurePolicy stops there), 143 stopped by SIGTERM (cancel), 1 anything else
(the Job retries up to its backoffLimit).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentcore import logs
from agentcore.api.batchjob import BatchJob, jobs_by_owner
from agentcore.api.common import ObjectMeta
from agentcore.api.exports import (
    FORMATS,
    ExportJob,
    ExportJobSpec,
    ExportOutput,
    ExportPhase,
    ExportTiming,
    ExportType,
    PrivacyLevel,
    RedactionApplied,
)
from agentcore.api.training import TrainingJob
from agentcore.exports import pipeline
from agentcore.exports.keys import KeyUnavailable, read_key
from agentcore.exports.pipeline import ExportCancelled, Written
from agentcore.exports.rules import BUILTIN_RULES, RedactionRule, RuleError, rule_from_configmap
from agentcore.exports.settings import ExportSettings, object_key
from agentcore.exports.sources import (
    NEEDS_TRAINER_JOBS,
    NEEDS_TRAININGJOBS,
    TRAINER_JOB_LABEL,
    SourceContext,
    SourceError,
    parse_trainingjobs,
)
from agentcore.exports.writers import ExportTooLarge
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import (
    CONFIGMAPS,
    EXPORTJOB_RESOURCE,
    JOBS,
    TRAININGJOB_RESOURCE,
    ApiError,
    KubeClient,
)
from agentcore.storage.db import database_url, make_engine
from agentcore.storage.objectstore import ObjectStore, S3ObjectStore, open_store

log = logging.getLogger("agentcore.exporter")
JSON_PATCH = "application/json-patch+json"
EXIT_OK, EXIT_RETRY, EXIT_INVALID, EXIT_STOPPED = 0, 1, 2, 143
Obj = dict[str, Any]


def run_exporter(args: argparse.Namespace) -> int:
    logs.configure("INFO")
    if not args.name or not args.namespace:
        print("agentcore exporter: set AGENTCORE_EXPORT_NAME and AGENTCORE_EXPORT_NAMESPACE", file=sys.stderr)
        return EXIT_INVALID
    return asyncio.run(_main(args.namespace, args.name))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class StatusReporter:
    """The pod's writes to its ExportJob status."""

    def __init__(self, kube: KubeClient, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name

    async def running(self, ej: ExportJob) -> ExportJob:
        timing = _timing(ej).model_copy(update={"started_at": _now()})
        patch = {
            "status": {"phase": ExportPhase.RUNNING.value, "timing": timing.to_resource(), "error": None}
        }
        fresh = await self.kube.patch(EXPORTJOB_RESOURCE, self.name, patch, self.namespace, sub="status")
        return ExportJob.model_validate(fresh)

    async def _final(self, ej: ExportJob, phase: ExportPhase, fields: Obj) -> bool:
        """Move Running → phase atomically: the JSON patch's test fails if the operator (cancel)
        changed the phase meanwhile, and then nothing is written."""
        done = _now()
        timing = _timing(ej).model_copy(update={"completed_at": done})
        requested = timing.requested_at or _created(ej.metadata)
        if requested:
            timing.duration_seconds = max(0.0, (done - requested).total_seconds())
        ops: list[Obj] = [
            {"op": "test", "path": "/status/phase", "value": ExportPhase.RUNNING.value},
            {"op": "replace", "path": "/status/phase", "value": phase.value},
            {"op": "add", "path": "/status/timing", "value": timing.to_resource()},
        ]
        ops += [{"op": "add", "path": f"/status/{k}", "value": v} for k, v in fields.items()]
        path = EXPORTJOB_RESOURCE.path(self.namespace, self.name, "status")
        try:
            await self.kube.request("PATCH", path, ops, content_type=JSON_PATCH)
            return True
        except ApiError as exc:
            if exc.status in (404, 409, 422):  # deleted, or the phase moved (cancelled)
                log.warning("final status not written: %s", exc)
                return False
            raise

    async def completed(self, ej: ExportJob, output: ExportOutput, redaction: RedactionApplied) -> bool:
        fields = {"output": output.to_resource(), "redactionApplied": redaction.to_resource()}
        return await self._final(ej, ExportPhase.COMPLETED, fields)

    async def failed(self, ej: ExportJob, reason: str, message: str) -> bool:
        return await self._final(ej, ExportPhase.FAILED, {"error": f"{reason}: {message}"[:32768]})

    async def note_error(self, message: str) -> None:
        """A retryable failure: record it without changing the phase (the Job retries the pod)."""
        patch = {"status": {"error": message[:32768]}}
        try:
            await self.kube.patch(EXPORTJOB_RESOURCE, self.name, patch, self.namespace, sub="status")
        except ApiError as exc:
            log.warning("could not record the error: %s", exc)


def _timing(ej: ExportJob) -> ExportTiming:
    return ej.observed_status.timing or ExportTiming()


def _created(meta: ObjectMeta) -> dt.datetime | None:
    if not meta.creation_timestamp:
        return None
    return dt.datetime.fromisoformat(meta.creation_timestamp.replace("Z", "+00:00"))


async def load_rule(kube: KubeClient, namespace: str, rule_id: str) -> RedactionRule:
    if rule_id in BUILTIN_RULES:
        return BUILTIN_RULES[rule_id]
    try:
        cm = await kube.get(CONFIGMAPS, rule_id, namespace)
    except ApiError as exc:
        if exc.status in (403, 404):
            raise RuleError(f"unknown redaction rule {rule_id!r}") from exc
        raise
    return rule_from_configmap(cm)


async def _context(kube: KubeClient, namespace: str, spec: ExportJobSpec, engine: Any) -> SourceContext:
    flt = spec.config.filters
    trainingjobs: list[TrainingJob] = []
    trainer_jobs: dict[str, BatchJob] = {}
    if spec.export_type in NEEDS_TRAININGJOBS or (flt is not None and (flt.segments or flt.regions)):
        trainingjobs = parse_trainingjobs((await kube.list(TRAININGJOB_RESOURCE, namespace)).get("items", []))
    if spec.export_type in NEEDS_TRAINER_JOBS:
        listing = await kube.list(JOBS, namespace, labelSelector=TRAINER_JOB_LABEL)
        uids = {tj.metadata.name or "": tj.metadata.uid for tj in trainingjobs}
        trainer_jobs = jobs_by_owner(listing.get("items", []), "TrainingJob", uids)
    return SourceContext(namespace, spec, engine, trainingjobs, trainer_jobs)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _main(namespace: str, name: str) -> int:
    async with KubeClient(kubeconfig.load()) as kube:
        try:
            raw = await kube.get(EXPORTJOB_RESOURCE, name, namespace)
        except ApiError as exc:
            if exc.status == 404:
                return EXIT_OK  # deleted meanwhile
            raise
        try:
            export = ExportJob.model_validate(raw)
        except ValidationError as exc:
            # Nothing a retry could fix; the operator's webhook and REST validate before this.
            log.error("ExportJob %s/%s is invalid: %s", namespace, name, exc)
            return EXIT_INVALID
        if export.phase.is_terminal or export.cancel_requested:
            return EXIT_OK
        reporter = StatusReporter(kube, namespace, name)
        export = await reporter.running(export)
        return await Export(kube, export, reporter, _stop_event()).run()


class Export:
    def __init__(
        self, kube: KubeClient, ej: ExportJob, reporter: StatusReporter, stop: asyncio.Event
    ) -> None:
        self.kube, self.ej, self.reporter, self.stop = kube, ej, reporter, stop
        self.namespace, self.name = ej.namespace, ej.name
        self.settings = ExportSettings.from_env()

    async def run(self) -> int:
        try:
            return await self._run(self.ej.spec)
        except (ValidationError, RuleError, SourceError, KeyUnavailable) as exc:
            await self.reporter.failed(self.ej, "ValidationFailed", str(exc))
            return EXIT_INVALID
        except ExportTooLarge as exc:
            await self.reporter.failed(self.ej, "ExportTooLarge", str(exc))
            return EXIT_INVALID
        except ExportCancelled:
            log.info("export cancelled")
            # On SIGTERM the pod is being stopped anyway; a cancel noticed by polling ends the Job
            # cleanly (exit 0), so that the Job controller does not start a replacement pod.
            return EXIT_STOPPED if self.stop.is_set() else EXIT_OK
        except Exception as exc:
            log.exception("export failed")
            await self.reporter.note_error(f"{type(exc).__name__}: {exc}")
            return EXIT_RETRY

    async def _run(self, spec: ExportJobSpec) -> int:
        cfg = spec.config
        rule = key = None
        if cfg.privacy_level != PrivacyLevel.FULL:
            rule = await load_rule(self.kube, self.namespace, cfg.redaction_rule)
            rule.check_level(cfg.privacy_level)
            key = await read_key(self.kube, self.namespace)
        engine = make_engine(database_url()) if _needs_db(spec) else None
        try:  # no migrations here: the chart's hook Job (or `agentcore dev`) ran them
            ctx = await _context(self.kube, self.namespace, spec, engine)
            title = spec.name or self.name
            prepared = await pipeline.prepare(ctx, title, rule, key)
            with tempfile.TemporaryDirectory(prefix="agentcore-export-") as tmp:
                name = pipeline.file_name(title, cfg.format)
                written = await pipeline.write(prepared, cfg.format, Path(tmp) / name, self.stop.is_set)
                return await self._publish(spec, name, written)
        finally:
            if engine is not None:
                await engine.dispose()

    async def _publish(self, spec: ExportJobSpec, name: str, written: Written) -> int:
        if self.stop.is_set() or await self._cancel_requested():
            raise ExportCancelled()
        store = open_store(os.environ.get("AGENTCORE_OBJECT_STORE") or "file:///tmp/agentcore-objects")
        key = object_key(self.namespace, self.ej.export_id, name)
        info = FORMATS[spec.config.format]
        ref = await asyncio.to_thread(_upload, store, key, written.path, info.content_type, name)
        retention = spec.retention_seconds or self.settings.retention_seconds
        output = ExportOutput(
            file_ref=ref,
            file_name=name,
            content_type=info.content_type,
            file_size_bytes=written.size_bytes,
            row_count=written.rows,
            expires_at=_now() + dt.timedelta(seconds=retention),
        )
        redaction = RedactionApplied(
            fields_redacted=list(written.fields_redacted), rows_filtered=written.rows_filtered
        )
        if not await self.reporter.completed(self.ej, output, redaction):
            await asyncio.to_thread(store.delete, key)  # cancelled or deleted meanwhile: leave nothing
            return EXIT_STOPPED
        log.info(
            "export %s/%s: %d rows, %d bytes → %s",
            self.namespace,
            self.name,
            written.rows,
            written.size_bytes,
            ref,
        )
        return EXIT_OK

    async def _cancel_requested(self) -> bool:
        try:
            fresh = await self.kube.get(EXPORTJOB_RESOURCE, self.name, self.namespace)
        except ApiError as exc:
            return exc.status == 404
        try:
            return ExportJob.model_validate(fresh).cancel_requested
        except ValidationError:
            log.warning("fresh ExportJob %s/%s is invalid; assuming not cancelled", self.namespace, self.name)
            return False


def _needs_db(spec: ExportJobSpec) -> bool:
    kube_only = {ExportType.PROJECT_SUMMARY}
    return spec.export_type not in kube_only or spec.config.include_telemetry


def _upload(store: ObjectStore, key: str, path: Path, content_type: str, name: str) -> str:
    if isinstance(store, S3ObjectStore):
        store.ensure_bucket()
    return store.put_file(key, path, content_type, pipeline.content_disposition(name))
