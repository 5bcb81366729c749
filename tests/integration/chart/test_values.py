"""Every value of the chart is documented (README values table) and typed (values.schema.json)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "agentcore-training"
# Objects passed through to Kubernetes as a whole: documented as one row.
OPAQUE = {"podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe"}


def leaves(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and key not in OPAQUE:
            yield from leaves(value, path)
        else:
            yield path


def documented() -> set[str]:
    readme = (CHART / "README.md").read_text()
    section = readme[readme.index("## Values") :]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def test_every_value_is_in_the_readme() -> None:
    values = set(leaves(yaml.safe_load((CHART / "values.yaml").read_text())))
    rows = documented()
    assert not values - rows, f"undocumented values: {sorted(values - rows)}"
    assert not rows - values, f"README documents values that do not exist: {sorted(rows - values)}"


def test_every_value_is_in_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path in leaves(yaml.safe_load((CHART / "values.yaml").read_text())):
        node = schema
        for part in path.split("."):
            assert part in node.get("properties", {}), f"{path} not in values.schema.json"
            node = node["properties"][part]
        assert "type" in node or "oneOf" in node, f"{path} has no type in values.schema.json"
