"""Wire models of the ingestion endpoint (``/ingest/v1/``): what a trainer pod sends and receives.

The trainer holds no platform credential; it proves who it is with a projected service-account
token and writes only through these models, which the API server validates before storing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "/ingest/v1"
DEFAULT_AUDIENCE = "agentcore.io/ingest"
MAX_BATCH_ROWS = 2000  # a large iteration (batch 64 x group 16) is 1,024 rows


class TrajectoryRow(BaseModel):
    """One trajectory as the trainer writes it (the columns of the trajectories table)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    job_id: str = Field(min_length=1, max_length=36)
    job_name: str = Field(min_length=1, max_length=253)
    namespace: str = Field(min_length=1, max_length=63)
    agent_id: str = Field(min_length=1, max_length=253)
    iteration: int = Field(ge=0)
    group_index: int = Field(ge=0)
    sample_index: int = Field(ge=0)
    query: str
    steps: list[dict[str, Any]]
    reward: float
    normalized_reward: float
    advantage: float
    success: bool
    execution_time_ms: int = Field(ge=0)
    error: str | None = None
    created_at: dt.datetime


class TrajectoryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[TrajectoryRow] = Field(max_length=MAX_BATCH_ROWS)


class BatchResult(BaseModel):
    inserted: int


class Dataset(BaseModel):
    queries: list[dict[str, Any]]


class StoredObject(BaseModel):
    uri: str  # where the object store keeps it (s3://… or file://…), as checkpoint statuses show


class ObjectList(BaseModel):
    keys: list[str]
