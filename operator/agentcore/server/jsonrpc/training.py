"""The training.* methods over TrainingJob resources and the trajectory database.

- ``start_grpo`` validates, places the datasets (inline in the resource below
  ``inline_data_max_bytes`` of JSON, else uploaded to the object store as
  ``datasets/<namespace>/<name>/{training,evaluation}.json`` and referenced by ``uri``), then
  creates the TrainingJob; its ``metadata.uid`` is the ``job_id`` (see :mod:`agentcore.server.jsonrpc.jobs`).
- ``get_status`` / ``list_jobs`` read the watch-backed :class:`~agentcore.server.jsonrpc.jobcache.JobCache`.
- ``cancel`` merge-patches ``spec.cancel = {requested: true, reason}``; the operator stops the job.
  The call then waits (``cancel_wait_seconds``) for phase Cancelled and returns
  ``status.cancellation``; if the job has not stopped by then it returns ``status: "cancelling"``
  with what is known, and ``get_status`` shows the outcome later.
- ``evaluate`` hands the job to the injected :class:`~agentcore.server.jsonrpc.evaluation.Evaluator`.
- ``export_trajectories`` pages the database by offset or by an opaque keyset cursor.

Tenancy: a caller sees jobs only in the namespaces of its token; any other job is "not found".
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from agentcore.api import (
    DataSource,
    GRPOConfig,
    TrainingDataSource,
    TrainingJob,
    TrainingJobSpec,
    TrainingPhase,
    TrainingQuery,
    format_money,
)
from agentcore.api.training import MAX_INLINE_QUERIES
from agentcore.auth import tokens
from agentcore.auth.tokens import Principal
from agentcore.cost import estimate_iteration_cost, money
from agentcore.datasources import DATASETS_PREFIX
from agentcore.exports.audit import AuditLog
from agentcore.kube.client import ApiError
from agentcore.server.jsonrpc import errors, models
from agentcore.server.jsonrpc.dispatch import CallContext, Method
from agentcore.server.jsonrpc.errors import RpcError, not_found
from agentcore.server.jsonrpc.evaluation import EvaluationError, Evaluator, UnconfiguredEvaluator
from agentcore.server.jsonrpc.jobcache import JobCache, KubeApi
from agentcore.server.jsonrpc.jobs import (
    ANNOTATION_CREATED_BY,
    LABEL_AGENT_ID,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    TRAININGJOBS_RESOURCE,
    CachedJob,
    cancel_view,
    checkpoint_ids,
    job_name,
)
from agentcore.server.jsonrpc.protocol import Encoded
from agentcore.storage.objectstore import ObjectStore
from agentcore.storage.trajectories import TrajectoryFilter, TrajectoryRepository, decode_cursor, to_api

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOptions:
    default_namespace: str = "default"
    inline_data_max_bytes: int = 256 << 10  # etcd stores objects up to ~1.5 MB
    cancel_wait_seconds: float = 30.0
    evaluate_timeout_seconds: float = 900.0
    cache_sync_timeout_seconds: float = 10.0


class TrainingService:
    def __init__(
        self,
        kube: KubeApi,
        cache: JobCache,
        repo: TrajectoryRepository,
        store: ObjectStore | None = None,
        evaluator: Evaluator | None = None,
        options: TrainingOptions | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.audit = audit
        self.kube = kube
        self.cache = cache
        self.repo = repo
        self.store = store
        self.evaluator = evaluator or UnconfiguredEvaluator()
        self.options = options or TrainingOptions()

    def methods(self) -> list[Method]:
        e = errors
        return [
            Method(
                name="training.start_grpo",
                params=models.StartGrpoParams,
                handler=self.start_grpo,
                summary="Start a new GRPO training job.",
                permission=tokens.START,
                result=models.StartGrpoResult,
                errors=(
                    e.INVALID_REQUEST,
                    e.INVALID_PARAMS,
                    e.INTERNAL_ERROR,
                    e.BUDGET_EXCEEDED,
                    e.VALIDATION_FAILED,
                ),
                on_invalid=start_grpo_invalid,
                heavy_params=True,
            ),
            Method(
                name="training.get_status",
                params=models.GetStatusParams,
                handler=self.get_status,
                summary="Get current status and metrics for a training job.",
                permission=tokens.VIEW,
                result=models.JobStatusResult,
                errors=(e.INVALID_PARAMS, e.NOT_FOUND),
            ),
            Method(
                name="training.cancel",
                params=models.CancelParams,
                handler=self.cancel,
                summary="Cancel a running or queued training job.",
                permission=tokens.CANCEL,
                result=models.CancelResult,
                errors=(e.INVALID_PARAMS, e.NOT_FOUND, e.CANNOT_CANCEL),
            ),
            Method(
                name="training.evaluate",
                params=models.EvaluateParams,
                handler=self.evaluate,
                summary="Run evaluation on a trained agent with held-out queries.",
                permission=tokens.EVALUATE,
                result=models.EvaluateResult,
                errors=(e.INVALID_PARAMS, e.NOT_FOUND, e.VALIDATION_FAILED, e.EVALUATION_FAILED),
                on_invalid=evaluate_invalid,
            ),
            Method(
                name="training.export_trajectories",
                params=models.ExportTrajectoriesParams,
                handler=self.export_trajectories,
                summary="Export trajectory data for analysis or debugging.",
                permission=tokens.EXPORT,
                result=models.ExportTrajectoriesResult,
                errors=(e.INVALID_PARAMS, e.NOT_FOUND, e.EXPORT_LIMIT_EXCEEDED),
            ),
            Method(
                name="training.list_jobs",
                params=models.ListJobsParams,
                handler=self.list_jobs,
                summary="List training jobs in the caller's namespaces, newest first.",
                permission=tokens.VIEW,
                result=models.ListJobsResult,
                errors=(e.INVALID_PARAMS, e.FORBIDDEN),
            ),
        ]

    # --- training.start_grpo ----------------------------------------------------------------------

    async def start_grpo(self, ctx: CallContext, p: models.StartGrpoParams) -> dict[str, Any]:
        namespace = self._namespace(ctx.principal, p.namespace)
        check_budget(p.config)
        name = job_name(p.agent_id)
        uploaded: list[str] = []
        try:
            training = await self._place(namespace, name, "training", p.training_data, uploaded)
            evaluation = None
            if p.evaluation_data is not None:
                evaluation = await self._place(namespace, name, "evaluation", p.evaluation_data, uploaded)
            job = TrainingJob(
                metadata={
                    "name": name,
                    "namespace": namespace,
                    "labels": {LABEL_AGENT_ID: p.agent_id, LABEL_MANAGED_BY: MANAGED_BY},
                    "annotations": {ANNOTATION_CREATED_BY: ctx.principal.sub[:1024]},
                },
                spec=TrainingJobSpec(
                    agent_id=p.agent_id,
                    config=p.config.grpo(),
                    workers=p.config.workers,
                    resources=p.config.resources,
                    training_data=TrainingDataSource(**training),
                    evaluation_data=DataSource(**evaluation) if evaluation else None,
                    webhooks=p.webhooks,
                ),
            )
            created = await self._create(job.to_resource(), namespace)
        except BaseException:
            await self._discard(uploaded)
            raise
        self.cache.observe(created)
        meta = created.get("metadata") or {}
        return {
            "job_id": meta.get("uid"),
            "status": TrainingPhase.QUEUED.api_value,
            "agent_id": p.agent_id,
            "total_iterations": p.config.n_iterations,
            "created_at": meta.get("creationTimestamp"),
            "namespace": namespace,
            "name": meta.get("name", name),
        }

    def _namespace(self, principal: Principal, requested: str | None) -> str:
        namespace = requested or principal.home_namespace(self.options.default_namespace)
        if not principal.may_use(namespace):
            raise RpcError(
                errors.FORBIDDEN,
                f"Forbidden: the token may not use namespace {namespace!r}",
                {"field": "namespace", "permission": "namespace"},
            )
        return namespace

    async def _place(
        self, namespace: str, name: str, kind: str, queries: list[TrainingQuery], uploaded: list[str]
    ) -> dict[str, Any]:
        """``{"inline": queries}`` when small, else ``{"uri": ...}`` of an uploaded JSON array."""
        payload = await asyncio.to_thread(encode_queries, queries)
        if len(payload) < self.options.inline_data_max_bytes and len(queries) <= MAX_INLINE_QUERIES:
            return {"inline": queries}
        if self.store is None:
            raise RpcError(
                errors.VALIDATION_FAILED,
                "Training data validation failed: too large to store in the resource",
                {
                    "field": f"{kind}_data",
                    "error": f"{len(payload)} bytes of JSON; this server keeps at most "
                    f"{self.options.inline_data_max_bytes} bytes inline and has no object store configured",
                },
            )
        key = f"{DATASETS_PREFIX}/{namespace}/{name}/{kind}.json"  # the tenant prefix DataPolicy allows
        uri = await asyncio.to_thread(self.store.put_bytes, key, payload, "application/json")
        uploaded.append(key)
        return {"uri": uri}

    async def _discard(self, keys: list[str]) -> None:
        store = self.store
        if store is None:
            return
        for key in keys:
            try:
                await asyncio.to_thread(store.delete, key)
            except Exception:
                log.warning("could not delete orphaned dataset %s", key, exc_info=True)

    async def _create(self, body: dict[str, Any], namespace: str) -> dict[str, Any]:
        try:
            return await self.kube.create(TRAININGJOBS_RESOURCE, body, namespace)
        except ApiError as exc:
            raise create_error(exc, namespace) from None

    # --- reads ------------------------------------------------------------------------------------

    async def _synced_cache(self) -> JobCache:
        """The cache, once it holds the apiserver's state: an empty cache would answer "not found"."""
        if not await self.cache.wait_synced(self.options.cache_sync_timeout_seconds):
            raise RpcError(errors.INTERNAL_ERROR, "Service not ready: the job cache has not synced yet")
        return self.cache

    async def _job(self, principal: Principal, job_id: UUID) -> CachedJob:
        job = (await self._synced_cache()).get(str(job_id))
        # Another tenant's job is reported exactly like a missing one.
        if job is None or not principal.may_use(job.namespace):
            raise not_found()
        return job

    async def get_status(self, ctx: CallContext, p: models.GetStatusParams) -> Encoded:
        return Encoded((await self._job(ctx.principal, p.job_id)).view_json)

    async def list_jobs(self, ctx: CallContext, p: models.ListJobsParams) -> dict[str, Any]:
        principal = ctx.principal
        namespaces: tuple[str, ...] | None = None if principal.all_namespaces else principal.namespaces
        if p.namespace is not None:
            self._namespace(principal, p.namespace)
            namespaces = (p.namespace,)
        cache = await self._synced_cache()
        jobs = [
            job
            for job in cache.in_namespaces(namespaces)
            if (p.agent_id is None or job.agent_id == p.agent_id)
            and (p.status is None or job.api_status == p.status)
        ]
        jobs.sort(key=_list_key, reverse=True)  # newest first; uid breaks ties
        total = len(jobs)
        if p.cursor is not None:
            after = decode_list_cursor(p.cursor)
            jobs = [job for job in jobs if _list_key(job) < after]
        else:
            jobs = jobs[p.offset :]
        page = jobs[: p.limit]
        has_more = len(jobs) > p.limit
        return {
            "jobs": [job.view for job in page],
            "total_count": total,
            "has_more": has_more,
            "next_cursor": encode_list_cursor(page[-1]) if has_more and page else None,
        }

    # --- training.cancel --------------------------------------------------------------------------

    async def cancel(self, ctx: CallContext, p: models.CancelParams) -> dict[str, Any]:
        job = await self._job(ctx.principal, p.job_id)
        if job.terminal:
            raise cannot_cancel(job, "is already")
        if not job.cancel_requested:
            request: dict[str, Any] = {"requested": True}
            if p.reason:
                request["reason"] = p.reason
            try:
                await self.kube.patch(
                    TRAININGJOBS_RESOURCE, job.name, {"spec": {"cancel": request}}, job.namespace
                )
            except ApiError as exc:
                if exc.status == 404:
                    raise not_found() from None
                if exc.status == 422:
                    # The CRD refuses cancelling a finished job; the cache had not seen it finish yet.
                    raise RpcError(
                        errors.CANNOT_CANCEL,
                        "Cannot cancel: the job already finished",
                        {"status": "finished"},
                    ) from None
                raise
        final = await self.cache.wait_for(
            job.uid, lambda j: j is None or j.terminal, self.options.cancel_wait_seconds
        )
        if final is None:
            raise not_found()
        if final.terminal and final.phase is not TrainingPhase.CANCELLED:
            raise cannot_cancel(final, "finished as")
        return cancel_view(final.obj, done=final.phase is TrainingPhase.CANCELLED)

    # --- training.evaluate ------------------------------------------------------------------------

    async def evaluate(self, ctx: CallContext, p: models.EvaluateParams) -> dict[str, Any]:
        job = await self._job(ctx.principal, p.job_id)
        if p.checkpoint_id is not None and p.checkpoint_id not in checkpoint_ids(job.obj):
            raise not_found("Checkpoint")
        try:
            # The cache drops the datasets; the evaluator gets the whole resource.
            full = await self.kube.get(TRAININGJOBS_RESOURCE, job.name, job.namespace)
        except ApiError as exc:
            if exc.status == 404:
                raise not_found() from None
            raise
        queries = [q.to_api() for q in p.evaluation_queries] if p.evaluation_queries else None
        result = await self._run_evaluation(full, p.checkpoint_id, queries)
        shaped = {"checkpoint_id": p.checkpoint_id, **result, "job_id": job.uid}
        try:
            models.EvaluateResult.validate_exact(shaped)
        except ValueError:  # ValidationError, or fields the API does not declare
            log.exception("the evaluator returned a result that does not match the API")
            raise RpcError(
                errors.EVALUATION_FAILED, "Evaluation failed: the backend returned an invalid result"
            ) from None
        return shaped

    async def _run_evaluation(
        self, job: dict[str, Any], checkpoint_id: str | None, queries: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        timeout = self.options.evaluate_timeout_seconds
        try:
            return await asyncio.wait_for(self.evaluator.evaluate(job, checkpoint_id, queries), timeout)
        except EvaluationError as exc:
            raise RpcError(
                errors.EVALUATION_FAILED, f"Evaluation failed: {exc}", {"error": str(exc)}
            ) from None
        except TimeoutError:
            raise RpcError(
                errors.EVALUATION_FAILED, f"Evaluation failed: no result within {timeout:g}s"
            ) from None
        except Exception:
            log.exception("evaluation backend failed")
            raise RpcError(
                errors.EVALUATION_FAILED, "Evaluation failed: the evaluation backend failed"
            ) from None

    # --- training.export_trajectories ---------------------------------------------------------------

    async def export_trajectories(
        self, ctx: CallContext, p: models.ExportTrajectoriesParams
    ) -> dict[str, Any]:
        if p.limit > models.MAX_EXPORT_LIMIT:
            raise RpcError(
                errors.EXPORT_LIMIT_EXCEEDED,
                f"Export limit exceeded: at most {models.MAX_EXPORT_LIMIT} trajectories per request",
                {"field": "limit", "max": models.MAX_EXPORT_LIMIT, "requested": p.limit},
            )
        if p.cursor is not None:
            if p.offset:
                raise RpcError(
                    errors.INVALID_PARAMS, data={"field": "offset", "error": "use either offset or cursor"}
                )
            try:
                decode_cursor(p.cursor)
            except ValueError:
                raise RpcError(
                    errors.INVALID_PARAMS, data={"field": "cursor", "error": "not a valid cursor"}
                ) from None
        job = await self._job(ctx.principal, p.job_id)
        flt = TrajectoryFilter(job.uid, success_only=p.success_only, min_reward=p.min_reward)
        page = await self.repo.page(flt, p.limit, p.offset, p.cursor)
        await self._audit_export(ctx, job, p, len(page.rows))
        return {
            "job_id": job.uid,
            "trajectories": [to_api(row) for row in page.rows],
            "total_count": page.total_count,
            "returned_count": len(page.rows),
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }

    async def _audit_export(
        self, ctx: CallContext, job: CachedJob, p: models.ExportTrajectoriesParams, returned: int
    ) -> None:
        """Trajectories leave the platform here as through the Exports API: same audit log."""
        if self.audit is None:
            return
        details = {
            "job_id": job.uid,
            "returned_count": returned,
            "offset": p.offset,
            "cursor": p.cursor is not None,
            "success_only": p.success_only,
            "min_reward": p.min_reward,
        }
        await self.audit.record(
            job.namespace,
            ctx.principal.sub,
            "trajectories.export",
            "TrainingJob",
            job.name,
            request_id=ctx.request_id,
            details=details,
        )


# --- helpers ----------------------------------------------------------------------------------------


def encode_queries(queries: list[TrainingQuery]) -> bytes:
    """The dataset file format: a JSON array of snake_case TrainingQuery objects."""
    return json.dumps([q.to_api() for q in queries], separators=(",", ":")).encode()


def check_budget(config: GRPOConfig) -> None:
    """-40001 when the budget cannot pay for even one iteration at the trainer's prior estimate."""
    needed = estimate_iteration_cost(config.batch_size, config.n_trajectories_per_query)
    if config.max_budget_usd < needed:
        raise RpcError(
            errors.BUDGET_EXCEEDED,
            "Budget exceeded: max_budget_usd does not cover one training iteration",
            {
                "field": "max_budget_usd",
                "budget_usd": format_money(config.max_budget_usd),
                "estimated_iteration_cost_usd": money(needed),
            },
        )


def cannot_cancel(job: CachedJob, verb: str) -> RpcError:
    return RpcError(
        errors.CANNOT_CANCEL,
        f"Cannot cancel: the job {verb} {job.api_status}",
        {"status": job.api_status},
    )


def create_error(exc: ApiError, namespace: str) -> RpcError:
    """An apiserver refusal of a create, as the caller should see it."""
    details = exc.body.get("details") if isinstance(exc.body, dict) else None
    if exc.status == 404 and isinstance(details, dict) and details.get("kind") == "namespaces":
        return RpcError(
            errors.INVALID_PARAMS,
            data={"field": "namespace", "error": f"namespace {namespace!r} does not exist"},
        )
    if exc.status == 422:  # the CRD's schema or CEL rules; the message names the field
        message = exc.body.get("message", "") if isinstance(exc.body, dict) else ""
        return RpcError(
            errors.INVALID_PARAMS, "Invalid params: rejected by the Kubernetes API", {"error": message}
        )
    if exc.status == 409:
        return RpcError(errors.INTERNAL_ERROR, "Internal error: job name collision, please retry")
    log.error("creating a TrainingJob in %s failed: %s", namespace, exc)
    return RpcError(errors.INTERNAL_ERROR, "Internal error")


_CONTAINER_TYPES = ("missing", "model_type", "model_attributes_type", "list_type", "dict_type")


def _inside(err: ErrorDetails, roots: tuple[str, ...]) -> bool:
    """The error is about the content of a present, well-typed ``roots`` parameter."""
    loc = err["loc"]
    return bool(loc) and loc[0] in roots and (len(loc) > 1 or err["type"] not in _CONTAINER_TYPES)


def start_grpo_invalid(exc: ValidationError) -> RpcError:
    """The spec's mapping for start_grpo: a bad ``config`` is -32600 "Invalid training
    configuration" with the field named relative to config (``n_iterations``); bad training or
    evaluation data is -40002; a missing or wrongly typed parameter is -32602."""
    details = exc.errors(include_url=False, include_input=False)
    config = [err for err in details if _inside(err, ("config",))]
    if config:
        return errors.from_error_details(
            config, models.StartGrpoParams, errors.INVALID_REQUEST, "Invalid training configuration", strip=1
        )
    data = [err for err in details if _inside(err, ("training_data", "evaluation_data"))]
    if data:
        return errors.from_error_details(
            data, models.StartGrpoParams, errors.VALIDATION_FAILED, "Training data validation failed"
        )
    return errors.from_error_details(details, models.StartGrpoParams)


def evaluate_invalid(exc: ValidationError) -> RpcError:
    """Bad custom evaluation queries are data validation failures (-40002), like training data."""
    details = exc.errors(include_url=False, include_input=False)
    data = [err for err in details if _inside(err, ("evaluation_queries",))]
    if data:
        return errors.from_error_details(
            data, models.EvaluateParams, errors.VALIDATION_FAILED, "Evaluation data validation failed"
        )
    return errors.from_error_details(details, models.EvaluateParams)


def _list_key(job: CachedJob) -> tuple[str, str]:
    return (job.created_at, job.uid)


def encode_list_cursor(job: CachedJob) -> str:
    raw = json.dumps(list(_list_key(job))).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_list_cursor(cursor: str) -> tuple[str, str]:
    try:
        created, uid = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(created, str) or not isinstance(uid, str):
            raise ValueError
        return created, uid
    except (ValueError, TypeError):
        raise RpcError(
            errors.INVALID_PARAMS, data={"field": "cursor", "error": "not a valid cursor"}
        ) from None
