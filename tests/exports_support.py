"""Shared by the export unit and integration tests: planted PII, seed rows, and readers that see
every byte a human or a program could recover from an export file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
import zipfile
from typing import Any

import pyarrow.parquet as pq
import pypdf

from agentcore.storage.trajectories import trajectory_id

# Raw values that must never leave an anonymized, aggregated or summary export.
PII_AGENT = "alice.smithers.5550100"  # a valid agentId (label value) that names a person
PII_NAME = "Alice Smithers"
PII_SSN = "123-45-6789"
PII_PHONE = "+1-555-0100-77"
PII_ACTOR = "bob.jones@example.com"
PII_IP = "203.0.113.77"
PII_VALUES = (PII_AGENT, PII_NAME, PII_SSN, PII_PHONE, PII_ACTOR, PII_IP)
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def trajectory_rows(
    namespace: str,
    job_id: str,
    job_name: str,
    iterations: int = 12,
    per_iteration: int = 8,
    agent: str = PII_AGENT,
) -> list[dict[str, Any]]:
    rows = []
    for it in range(iterations):
        for s in range(per_iteration):
            rows.append(
                {
                    "id": trajectory_id(job_id, it, s // 4, s % 4),
                    "job_id": job_id,
                    "job_name": job_name,
                    "namespace": namespace,
                    "agent_id": agent,
                    "iteration": it,
                    "group_index": s // 4,
                    "sample_index": s % 4,
                    "query": f"I am {PII_NAME}, SSN {PII_SSN}; book a flight #{it}",
                    "steps": [
                        {"action": {"tool": "email", "params": {"to": PII_AGENT}}, "observation": PII_PHONE}
                    ],
                    "reward": round((s + it) / (per_iteration + iterations), 4),
                    "normalized_reward": 0.0,
                    "advantage": 0.1 * (s - 3.5),
                    "success": (s + it) % 3 != 0,
                    "execution_time_ms": 250 * s + it,
                    "error": f"call {PII_PHONE} failed" if s == 7 else None,
                    "created_at": BASE + dt.timedelta(minutes=it),
                }
            )
    return rows


def audit_rows(namespace: str, n: int = 12) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "occurred_at": BASE + dt.timedelta(minutes=i),
            "namespace": namespace,
            "actor": PII_ACTOR,
            "action": "export.create" if i % 2 else "training.start_grpo",
            "resource_kind": "ExportJob",
            "resource_name": f"export-{i}",
            "outcome": "success",
            "request_id": f"req-{i}",
            "source_ip": PII_IP,
            "details": {"note": f"for {PII_NAME}"},
        }
        for i in range(n)
    ]


def trainingjob(
    namespace: str, name: str, uid: str, phase: str = "Completed", **status: Any
) -> dict[str, Any]:
    """A TrainingJob resource as the operator and trainer leave it (status filled in)."""
    return {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"training.agentcore.io/created-by": PII_ACTOR},
            "labels": {"training.agentcore.io/segment": "early_adopters"},
        },
        "spec": {
            "agentId": PII_AGENT,
            "config": {"nIterations": 12, "batchSize": 2, "nTrajectoriesPerQuery": 4, "learningRate": 0.0001},
            "trainingData": {"configMapKeyRef": {"name": "q", "key": "q.json"}},
        },
        "status": {
            "phase": phase,
            "jobId": uid,
            "currentIteration": 12,
            "totalIterations": 12,
            "progressPercent": 100.0,
            "costUsd": "1.25",
            "budgetUsd": "10.00",
            "message": f"trainer of {PII_NAME} finished",
            "metrics": {"avgReward": 0.61, "successRate": 0.7, "trainLoss": 0.1, "trajectoriesGenerated": 96},
            "checkpoints": [
                {
                    "id": f"{name}-ckpt-6",
                    "iteration": 6,
                    "uri": "s3://b/c6",
                    "createdAt": "2026-01-01T00:06:00Z",
                    "validationScore": 0.5,
                },
                {
                    "id": f"{name}-ckpt-12",
                    "iteration": 12,
                    "uri": "s3://b/c12",
                    "createdAt": "2026-01-01T00:12:00Z",
                    "validationScore": 0.6,
                },
            ],
            "evaluation": {
                "successRate": 0.7,
                "baselineComparison": {
                    "pValue": 0.01,
                    "successRateImprovement": 0.2,
                    "statisticallySignificant": True,
                },
            },
            **status,
        },
    }


def recoverable_texts(fmt: str, data: bytes) -> list[str]:
    """Everything readable in the file: raw bytes, decoded values, zip members, PDF text/streams."""
    texts = [data.decode("latin-1")]
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(data))
        texts += [json.dumps(table.to_pylist(), default=str), table.schema.to_string()]
    elif fmt == "excel":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            texts += [zf.read(name).decode("utf-8", "replace") for name in zf.namelist()]
    elif fmt == "pdf":
        reader = pypdf.PdfReader(io.BytesIO(data))
        for page in reader.pages:
            texts.append(page.extract_text())
            stream = page.get_contents()
            texts.append(stream.get_data().decode("latin-1") if stream is not None else "")
    return texts


def leaked(fmt: str, data: bytes, values: tuple[str, ...] = PII_VALUES) -> list[str]:
    texts = recoverable_texts(fmt, data)
    return [v for v in values if any(v in t for t in texts)]


def read_rows(fmt: str, data: bytes) -> list[dict[str, Any]]:
    """Rows of a json (Lines), csv or parquet export."""
    if fmt == "json":
        return [json.loads(line) for line in data.decode().splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data)).to_pylist()
    raise ValueError(fmt)
