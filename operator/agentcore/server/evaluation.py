"""The API server's `training.evaluate` backend: the trainer's checkpoint evaluation, run in a
process pool so the event loop never blocks on CPU-bound work."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from agentcore.api.training import GRPOConfig
from agentcore.datasources import DataSourceError, load_queries
from agentcore.kube.client import KubeClient
from agentcore.server.jsonrpc.errors import RpcError, not_found
from agentcore.server.jsonrpc.evaluation import EvaluationError


def _evaluate_in_worker(
    store_uri: str,
    namespace: str,
    name: str,
    config: dict[str, Any],
    queries: list[dict[str, Any]],
    checkpoint_id: str | None,
) -> dict[str, Any]:
    # Runs in a worker process: open the store there (boto3 clients do not cross processes).
    from agentcore.storage.objectstore import open_store
    from agentcore_trainer.evaluation.checkpoint import CheckpointNotFound, evaluate_checkpoint

    try:
        return evaluate_checkpoint(
            open_store(store_uri), namespace, name, GRPOConfig.model_validate(config), queries, checkpoint_id
        )
    except CheckpointNotFound as exc:
        return {"__not_found__": str(exc)}


class CheckpointEvaluator:
    """Evaluates a TrainingJob's checkpoint (best by default) against its initial policy."""

    def __init__(self, store_uri: str, kube: KubeClient, workers: int = 1) -> None:
        self.store_uri = store_uri
        self.kube = kube
        # spawn: a forked copy of a running event loop and its sockets is not safe to use.
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    async def evaluate(
        self, job: dict[str, Any], checkpoint_id: str | None, queries: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        meta, spec = job["metadata"], job["spec"]
        if queries is None:
            queries = await self._job_queries(job)
        body = await asyncio.get_running_loop().run_in_executor(
            self._pool,
            _evaluate_in_worker,
            self.store_uri,
            meta["namespace"],
            meta["name"],
            spec["config"],
            queries,
            checkpoint_id,
        )
        if "__not_found__" in body:
            raise not_found("Checkpoint") if checkpoint_id else EvaluationError(body["__not_found__"])
        return body

    async def _job_queries(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        source = job["spec"].get("evaluationData")
        if not source:
            raise EvaluationError("the job has no evaluationData: pass evaluation_queries")
        try:
            return await load_queries(source, job["metadata"]["namespace"], self.kube)
        except DataSourceError as exc:
            raise EvaluationError(f"evaluation data: {exc}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["CheckpointEvaluator", "RpcError"]
