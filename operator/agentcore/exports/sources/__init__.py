"""Datasets per export type and privacy level (the mapping is documented in ``agentcore.exports``).

One module per export type, each with its ``SOURCE``; :mod:`.registry` maps export types to them
and :mod:`.base` holds what they share. Row data (trajectories, telemetry, audit entries) streams
from the database in batches; per-job and per-agent tables come from the namespace's TrainingJobs
(bounded by the number of jobs) joined with per-group aggregates computed in SQL.

The names other modules use are re-exported here, so ``agentcore.exports.sources.X`` keeps working.
"""

from agentcore.api.exports import NEEDS_TRAINER_JOBS, NEEDS_TRAININGJOBS
from agentcore.exports.sources.base import (
    TRAINER_JOB_LABEL,
    Builder,
    Source,
    SourceContext,
    SourceError,
    parse_time,
    parse_trainingjobs,
    summary_dataset,
    table,
)
from agentcore.exports.sources.node_comparison import Node, resolve_nodes
from agentcore.exports.sources.registry import (
    BUILDERS,
    SOURCES,
    build_dataset,
    source_for,
)
from agentcore.exports.sources.trajectories import TRAJECTORY_COLUMNS

__all__ = [
    "BUILDERS",
    "NEEDS_TRAINER_JOBS",
    "NEEDS_TRAININGJOBS",
    "SOURCES",
    "TRAINER_JOB_LABEL",
    "TRAJECTORY_COLUMNS",
    "Builder",
    "Node",
    "Source",
    "SourceContext",
    "SourceError",
    "build_dataset",
    "parse_time",
    "parse_trainingjobs",
    "resolve_nodes",
    "source_for",
    "summary_dataset",
    "table",
]
