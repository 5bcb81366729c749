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
