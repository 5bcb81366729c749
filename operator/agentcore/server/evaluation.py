"""The API server's ``training.evaluate`` backend: the trainer's evaluation worker in a subprocess.

The server picks the checkpoint (best by default) from the object store and hands the worker a
file holding it, the job's config and the queries; the worker runs with a scrubbed environment
(no database URL, object-store keys, JWT secret or kubeconfig), so a user's reward function can
read nothing of the platform, and whatever it does — raise SystemExit, crash, hang — ends only
its own process. Concurrency is bounded overall and per tenant (namespace), so one tenant cannot
hold every worker. The control plane never imports the trainer package: the worker is a command
(``evaluator_command``), its contract JSON on stdin and stdout (see the worker's docstring).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentcore.api.training import TrainingJob
from agentcore.datasources import DataPolicy, DataSourceError, load_queries
from agentcore.kube.client import KubeClient
from agentcore.server.jsonrpc.errors import not_found
from agentcore.server.jsonrpc.evaluation import EvaluationError
from agentcore.storage.checkpoints import (
    CheckpointInfo,
    CheckpointManager,
    CheckpointNotFound,
    checkpoint_prefix,
    pick_checkpoint,
)
from agentcore.storage.objectstore import ObjectStore

DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "agentcore_trainer.evaluation.worker")
# What the worker may inherit: enough to run Python, nothing that carries a credential.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH")
_MAX_OUTPUT = 1 << 20  # a result is a few hundred bytes; more is a misbehaving reward function


def worker_env(home: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env["HOME"] = str(home)
    return env


class CheckpointEvaluator:
    """Evaluates a TrainingJob's checkpoint against its initial policy in a sandboxed worker."""

    def __init__(
        self,
        store: ObjectStore,
        kube: KubeClient,
        command: Sequence[str] = DEFAULT_COMMAND,
        workers: int = 2,
        per_tenant: int = 1,
    ) -> None:
        self.store, self.kube, self.command = store, kube, tuple(command)
        self._all = asyncio.Semaphore(workers)
        self._per_tenant = per_tenant
        self._tenants: dict[str, asyncio.Semaphore] = {}

    async def evaluate(
        self, job: dict[str, Any], checkpoint_id: str | None, queries: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        tj = TrainingJob.model_validate(job)
        namespace, name = tj.metadata.namespace or "", tj.metadata.name or ""
        if queries is None:
            queries = await self._job_queries(tj)
        info, blob = await asyncio.to_thread(self._checkpoint, namespace, name, tj, checkpoint_id)
        request = {"config": tj.spec.config.to_api(), "queries": queries, "checkpoint_id": info.id}
        tenant = self._tenants.setdefault(namespace, asyncio.Semaphore(self._per_tenant))
        async with tenant, self._all:
            return await self._run(request, blob)

    def _checkpoint(
        self, namespace: str, name: str, tj: TrainingJob, checkpoint_id: str | None
    ) -> tuple[CheckpointInfo, bytes]:
        manager = CheckpointManager(
            self.store, checkpoint_prefix(namespace, name), tj.spec.config.checkpoint_retention
        )
        try:
            info = pick_checkpoint(manager, checkpoint_id)
        except CheckpointNotFound as exc:
            raise not_found("Checkpoint") if checkpoint_id else EvaluationError(str(exc)) from exc
        try:
            return info, manager.load(info)
        except ValueError as exc:  # checksum mismatch
            raise EvaluationError(str(exc)) from exc

    async def _run(self, request: dict[str, Any], blob: bytes) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="agentcore-eval-") as tmp:
            path = Path(tmp) / "checkpoint"
            await asyncio.to_thread(path.write_bytes, blob)
            payload = json.dumps({**request, "checkpoint_path": str(path)}).encode()
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=worker_env(Path(tmp)),
                cwd=tmp,
                limit=_MAX_OUTPUT,
            )
            try:
                out, err = await proc.communicate(payload)
            except asyncio.CancelledError:  # the caller's timeout: never leave a worker behind
                proc.kill()
                await proc.wait()
                raise
        return _result(proc.returncode, out, err)

    async def _job_queries(self, tj: TrainingJob) -> list[dict[str, Any]]:
        source = tj.spec.evaluation_data
        if source is None:
            raise EvaluationError("the job has no evaluationData: pass evaluation_queries")
        try:
            policy = DataPolicy(store=self.store.uri)
            return await load_queries(source, tj.metadata.namespace or "", self.kube, policy=policy)
        except DataSourceError as exc:
            raise EvaluationError(f"evaluation data: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: workers live only as long as their request."""


def _result(code: int | None, out: bytes, err: bytes) -> dict[str, Any]:
    try:
        body = json.loads(out) if out else {}
    except json.JSONDecodeError:
        body = {}
    if code == 0 and isinstance(body, dict) and "metrics" in body:
        return body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        raise EvaluationError(body["error"][:1000])
    tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {code}"]
    raise EvaluationError(f"the evaluation worker failed: {tail[0][:500]}")
