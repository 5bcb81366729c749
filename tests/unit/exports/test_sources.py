"""The sources registry: one source per export type, and the cluster reads each one needs."""

from __future__ import annotations

from agentcore.api.exports import ExportType, PrivacyLevel
from agentcore.exports import sources
from agentcore.exports.sources import registry, telemetry_dump, trajectories


def test_every_export_type_has_a_builder_at_every_level():
    assert set(registry.SOURCES) == set(ExportType)
    for kind in ExportType:
        assert set(sources.BUILDERS[kind]) == set(PrivacyLevel)
        # Full and anonymized export the same rows; redaction makes the difference.
        assert sources.BUILDERS[kind][PrivacyLevel.FULL] is sources.BUILDERS[kind][PrivacyLevel.ANONYMIZED]


def test_aggregated_trajectories_are_telemetry():
    level = PrivacyLevel.AGGREGATED
    assert trajectories.SOURCE.builder(level) is telemetry_dump.telemetry_aggregated


def test_cluster_reads_per_export_type():
    assert set(sources.NEEDS_TRAININGJOBS) == {
        ExportType.PROJECT_SUMMARY,
        ExportType.NODE_COMPARISON,
        ExportType.PERSONA_CATALOG,
        ExportType.RELIABILITY_REPORT,
    }
    assert set(sources.NEEDS_TRAINER_JOBS) == {ExportType.RELIABILITY_REPORT}
