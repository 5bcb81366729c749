"""crds/ is generated from the API models: no drift, and every schema is structural and documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentcore.api import crdgen

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"

Node = dict[str, Any]


def _crds() -> dict[str, Node]:
    return {k.kind: crdgen.custom_resource_definition(k) for k in crdgen.RESOURCE_KINDS}


def _schema(kind: str) -> Node:
    schema: Node = _crds()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _walk(node: Node, path: str) -> Iterator[tuple[str, Node]]:
    """Every schema node with its path; properties by name, array items as [*]."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[*]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{*}}")


def _properties(node: Node, path: str) -> Iterator[tuple[str, str, Node]]:
    """(path, property name, schema) of every named property."""
    for parent_path, parent in _walk(node, path):
        for name, sub in parent.get("properties", {}).items():
            yield f"{parent_path}.{name}", name, sub


KINDS = [k.kind for k in crdgen.RESOURCE_KINDS]


def test_crds_directory_matches_the_generator() -> None:
    drift = crdgen.check(CRDS, crdgen.generate())
    assert not drift, "crds/ is stale: run `python -m agentcore.api.crdgen --out crds/`\n" + "".join(drift)


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 0
    target = tmp_path / "trainingjobs.training.agentcore.io.yaml"
    target.write_text(target.read_text().replace("default: 1000", "default: 999"))
    capsys.readouterr()
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "-                    default: 999" in out and "+                    default: 1000" in out


def test_generation_is_deterministic() -> None:
    assert crdgen.generate() == crdgen.generate()


def test_manifest_files_are_plain_yaml_without_aliases() -> None:
    for path in CRDS.glob("*.yaml"):
        text = path.read_text()
        assert "&id" not in text and "*id" not in text, path
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_has_a_description(kind: str) -> None:
    missing = [
        path
        for path, _, node in _properties(_schema(kind), kind)
        # The apiserver forbids anything but `type` on the root metadata.
        if path != f"{kind}.metadata" and not node.get("description")
    ]
    assert not missing


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "uniqueItems", "title", "definitions"}
    for path, node in _walk(_schema(kind), kind):
        assert not forbidden & set(node), f"{path}: {forbidden & set(node)}"
        if node.get("x-kubernetes-int-or-string"):  # the one typeless node (quantities)
            assert "type" not in node, path
            continue
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if "properties" in node or "additionalProperties" in node:
            assert node["type"] == "object", path
        if node["type"] == "array":
            assert "items" in node, path
        free_form = "properties" not in node and "additionalProperties" not in node
        if node["type"] == "object" and free_form and path != f"{kind}.metadata":
            assert node.get("x-kubernetes-preserve-unknown-fields") is True, path
        assert node.get("default", 0) is not None, path


@pytest.mark.parametrize("kind", KINDS)
def test_every_numeric_range_has_a_cel_rule_naming_the_field(kind: str) -> None:
    for path, name, node in _properties(_schema(kind), kind):
        if "minimum" not in node and "maximum" not in node:
            continue
        messages = [rule["message"] for rule in node.get("x-kubernetes-validations", [])]
        assert any(m.startswith(f"{name} must be") for m in messages), path


def test_range_rules_read_like_the_spec() -> None:
    config = _schema("TrainingJob")["properties"]["spec"]["properties"]["config"]["properties"]
    assert config["nIterations"]["x-kubernetes-validations"] == [
        {"rule": "self >= 1 && self <= 10000", "message": "nIterations must be between 1 and 10000"}
    ]
    assert config["epsilonLow"]["x-kubernetes-validations"] == [
        {"rule": "self >= 0.0 && self < 1.0", "message": "epsilonLow must be >= 0.0 and < 1.0"}
    ]
    assert config["maxBudgetUsd"] == {
        "description": config["maxBudgetUsd"]["description"],
        "type": "string",
        "default": "100.00",
        "pattern": r"^\d+(\.\d+)?$",
    }


def test_defaults_are_the_specs() -> None:
    config = _schema("TrainingJob")["properties"]["spec"]["properties"]["config"]["properties"]
    defaults = {name: node.get("default") for name, node in config.items()}
    assert defaults["nIterations"] == 1000
    assert defaults["batchSize"] == 16
    assert defaults["nTrajectoriesPerQuery"] == 8
    assert "default" not in config["learningRate"]  # unset: the policy backend's default
    assert defaults["checkpointInterval"] == 10
    assert defaults["maxStepsPerTrajectory"] == 20
    assert defaults["gamma"] == 0.99
    export_config = _schema("ExportJob")["properties"]["spec"]["properties"]["config"]["properties"]
    assert export_config["privacyLevel"]["default"] == "anonymized"
    assert export_config["format"]["enum"] == ["json", "csv", "parquet", "excel", "pdf"]


def test_cross_field_rules() -> None:
    spec = _schema("TrainingJob")["properties"]["spec"]
    rules = {r["message"] for r in spec["properties"]["trainingData"]["x-kubernetes-validations"]}
    assert "exactly one of inline, configMapKeyRef, secretKeyRef or uri must be set" in rules
    assert any("cancel" in r["rule"] for r in spec["x-kubernetes-validations"])
    export_config = _schema("ExportJob")["properties"]["spec"]["properties"]["config"]
    date_rules = export_config["properties"]["dateRange"]["x-kubernetes-validations"]
    assert date_rules == [
        {"rule": "self.start <= self.end", "message": "dateRange.start must not be after dateRange.end"}
    ]


def test_status_is_strict() -> None:
    for kind in KINDS:
        status = _schema(kind)["properties"]["status"]
        assert "x-kubernetes-preserve-unknown-fields" not in status
        assert "properties" in status
        defaults = [path for path, node in _walk(status, "status") if "default" in node]
        # Only metav1-style Condition.message defaults to "" (the condition is always written whole).
        assert all(path.endswith("conditions[*].message") for path in defaults), defaults


def test_crd_names_columns_and_subresources() -> None:
    crds = _crds()
    tj, ej = crds["TrainingJob"]["spec"], crds["ExportJob"]["spec"]
    assert crds["TrainingJob"]["metadata"]["name"] == "trainingjobs.training.agentcore.io"
    assert (tj["names"]["shortNames"], ej["names"]["shortNames"]) == (["tj"], ["ej"])
    assert tj["names"]["categories"] == ej["names"]["categories"] == ["agentcore"]
    assert tj["scope"] == ej["scope"] == "Namespaced"
    for spec in (tj, ej):
        (version,) = spec["versions"]
        assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
        assert version["subresources"] == {"status": {}}

    def columns(spec: Node) -> list[str]:
        return [c["name"] for c in spec["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]

    assert columns(tj) == ["Phase", "Progress", "Cost", "Age"]
    assert columns(ej) == ["Phase", "Format", "Rows", "Age"]
