"""Export type -> source: the one table that says which module builds which export."""

from __future__ import annotations

from agentcore.api.exports import ExportType, PrivacyLevel
from agentcore.exports.schema import Dataset
from agentcore.exports.sources import (
    audit_log,
    node_comparison,
    persona_catalog,
    project_summary,
    reliability_report,
    telemetry_dump,
    trajectories,
)
from agentcore.exports.sources.base import Builder, Source, SourceContext

SOURCES: dict[ExportType, Source] = {
    ExportType.TRAJECTORIES: trajectories.SOURCE,
    ExportType.TELEMETRY_DUMP: telemetry_dump.SOURCE,
    ExportType.PROJECT_SUMMARY: project_summary.SOURCE,
    ExportType.NODE_COMPARISON: node_comparison.SOURCE,
    ExportType.PERSONA_CATALOG: persona_catalog.SOURCE,
    ExportType.RELIABILITY_REPORT: reliability_report.SOURCE,
    ExportType.AUDIT_LOG: audit_log.SOURCE,
}

BUILDERS: dict[ExportType, dict[PrivacyLevel, Builder]] = {
    kind: {level: source.builder(level) for level in PrivacyLevel} for kind, source in SOURCES.items()
}
"""The same mapping spelled out per privacy level."""


def source_for(kind: ExportType) -> Source:
    return SOURCES[kind]


async def build_dataset(ctx: SourceContext) -> Dataset:
    return await source_for(ctx.spec.export_type).builder(ctx.config.privacy_level)(ctx)
