"""Test data shared by the API server's unit and integration tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from agentcore.storage.trajectories import trajectory_id

STEP = {
    "state": {"context": "c"},
    "action": {"tool": "calculator", "params": "1+1"},
    "result": {"answer": "2"},
    "timestamp": "2026-01-01T00:00:00Z",
    "duration_ms": 5,
}


def queries(n: int, size: int = 0) -> list[dict[str, Any]]:
    """``n`` valid TrainingQuery objects (snake_case), each padded by ``size`` characters."""
    pad = "x" * size
    return [
        {"query": f"Add {i} and {i + 1} {pad}", "expected_outcome": {"answer": str(2 * i + 1)}}
        for i in range(n)
    ]


def trajectory_rows(
    job_id: str, n: int, namespace: str = "team-a", per_timestamp: int = 8
) -> list[dict[str, Any]]:
    """Rows for TrajectoryRepository.add_batch: ``per_timestamp`` rows share a created_at, so the
    id must break ties; every third succeeds; rewards cycle through 0.0 … 0.9."""
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    half = per_timestamp // 2
    return [
        {
            "id": trajectory_id(job_id, i // per_timestamp, (i % per_timestamp) // half, i % half),
            "job_id": job_id,
            "job_name": "j",
            "namespace": namespace,
            "agent_id": "code-generator-v2",
            "iteration": i // per_timestamp,
            "group_index": (i % per_timestamp) // half,
            "sample_index": i % half,
            "query": f"q{i}",
            "steps": [STEP],
            "reward": (i % 10) / 10,
            "normalized_reward": 0.5,
            "advantage": 0.1,
            "success": i % 3 == 0,
            "execution_time_ms": 100 + i,
            "error": None,
            "created_at": base + dt.timedelta(seconds=i // per_timestamp),
        }
        for i in range(n)
    ]


# The Training API reference's examples (docs/spec/training-api-reference.md), shared by the tests.
SPEC_START: dict[str, Any] = {
    "agent_id": "code-generator-v2",
    "config": {
        "n_iterations": 500,
        "batch_size": 16,
        "n_trajectories_per_query": 8,
        "learning_rate": 0.0001,
        "max_budget_usd": 50.00,
        "checkpoint_interval": 10,
    },
    "training_data": [
        {
            "query": "Write a function to sort a list",
            "expected_outcome": {"test_passed": True, "execution_time_ms": 100},
        },
        *queries(99),
    ],
    "evaluation_data": [
        {"query": "Write a binary search function", "expected_outcome": {"test_passed": True}}
    ],
}

# training.get_status's example, as the TrainingJob status that produces it.
SPEC_STATUS: dict[str, Any] = {
    "phase": "Running",
    "currentIteration": 150,
    "totalIterations": 500,
    "progressPercent": 30.0,
    "metrics": {
        "trainLoss": 0.234,
        "validationAccuracy": 0.82,
        "avgReward": 0.65,
        "trajectoriesGenerated": 1200,
    },
    "costUsd": "12.50",
    "budgetUsd": "50.00",
    "budgetRemainingPercent": 75.0,
    "startedAt": "2025-10-17T10:30:05Z",
    "estimatedCompletion": "2025-10-17T12:15:00Z",
    "bestCheckpointId": "abc-123-def",
}
