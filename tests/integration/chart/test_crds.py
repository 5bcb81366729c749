"""The chart ships the CRDs in its crds/ directory (Helm installs them before anything else): they
must be byte-for-byte the generated top-level crds/, with no file missing or extra."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOP = REPO / "crds"
CHART = REPO / "charts" / "agentcore-training" / "crds"
FIX = "fix: python -m agentcore.api.crdgen --out crds && cp crds/*.yaml charts/agentcore-training/crds/"


def _names(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.yaml")}


def test_same_files() -> None:
    assert _names(TOP), "no CRDs in crds/"
    assert _names(CHART) == _names(TOP), f"chart CRDs differ from crds/ in the set of files; {FIX}"


@pytest.mark.parametrize("name", sorted(_names(TOP)))
def test_identical(name: str) -> None:
    chart_copy = CHART / name
    assert chart_copy.exists(), f"charts/agentcore-training/crds/{name} missing; {FIX}"
    assert chart_copy.read_bytes() == (TOP / name).read_bytes(), f"{name} drifted; {FIX}"
