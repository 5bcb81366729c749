"""The generated CRDs in a real kube-apiserver: accepted, Established, and validating as the spec says."""

from __future__ import annotations

import copy
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentcore.api import crdgen
from agentcore.devenv.controlplane import ControlPlane

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def examples_namespace(crds_installed: ControlPlane) -> Iterator[str]:
    """A fresh namespace holding the applied examples, shared by the tests that read them."""
    name = f"crd-{uuid.uuid4().hex[:8]}"
    crds_installed.kubectl("create", "namespace", name)
    yield name
    crds_installed.kubectl("delete", "namespace", name, "--wait=false", check=False)


def _retry(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Call ``fn`` until it stops raising AssertionError (the apiserver publishes OpenAPI lazily)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_crds_are_established(crds_installed: ControlPlane) -> None:
    for kind in crdgen.RESOURCE_KINDS:
        out = crds_installed.kubectl(
            "get",
            "crd",
            kind.crd_name,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Established")].status}',
        ).stdout
        assert out == "True", kind.crd_name


def test_examples_are_accepted(crds_installed: ControlPlane, examples_namespace: str) -> None:
    files = [EXAMPLES / "trainingjob.yaml", EXAMPLES / "exportjob.yaml", EXAMPLES / "trainingjob-llm.yaml"]
    args = [arg for path in files for arg in ("-f", str(path))]
    out = crds_installed.kubectl("apply", "-n", examples_namespace, *args).stdout
    assert "configmap/tool-agent-queries" in out
    assert "trainingjob.training.agentcore.io/tool-agent-example" in out
    assert "exportjob.training.agentcore.io/tool-agent-trajectories" in out
    assert "trainingjob.training.agentcore.io/llm-agent-example" in out
    # The kustomization lists the same objects: applying it again changes nothing.
    again = crds_installed.kubectl("apply", "-n", examples_namespace, "-k", str(EXAMPLES)).stdout
    assert "created" not in again, again


def test_defaults_are_applied_by_the_apiserver(crds_installed: ControlPlane, examples_namespace: str) -> None:
    _ensure_examples(crds_installed, examples_namespace)
    job = json.loads(
        crds_installed.kubectl(
            "get", "tj", "tool-agent-example", "-n", examples_namespace, "-o", "json"
        ).stdout
    )
    config = job["spec"]["config"]
    assert config["nIterations"] == 40  # given
    assert (
        config["gamma"] == 0.99 and config["lossType"] == "dapo" and config["epsilonLow"] == 0.2
    )  # defaulted
    assert job["spec"]["suspend"] is False


def _ensure_examples(cp: ControlPlane, namespace: str) -> None:
    cp.kubectl("apply", "-n", namespace, "-k", str(EXAMPLES))


# --- validation ----------------------------------------------------------------------------------


def _training_job() -> Manifest:
    return {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "validation-probe"},
        "spec": {
            "agentId": "probe-agent",
            "config": {"nIterations": 10, "maxBudgetUsd": "1.00"},
            "trainingData": {"configMapKeyRef": {"name": "queries", "key": "queries.json"}},
        },
    }


def _export_job() -> Manifest:
    return {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "ExportJob",
        "metadata": {"name": "validation-probe"},
        "spec": {
            "exportType": "project_summary",
            "config": {
                "format": "csv",
                "privacyLevel": "anonymized",
                "dateRange": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-09T23:59:59Z"},
            },
        },
    }


def _set(path: str, value: Any) -> Callable[[Manifest], None]:
    def mutate(manifest: Manifest) -> None:
        *parents, leaf = path.split(".")
        node = manifest
        for key in parents:
            node = node[key]
        node[leaf] = value

    return mutate


def _distributed(name: str) -> Callable[[Manifest], None]:
    def mutate(manifest: Manifest) -> None:
        manifest["metadata"]["name"] = name
        manifest["spec"]["workers"] = 2

    return mutate


# (case id, base manifest, mutation, camelCase field the error must name)
INVALID: list[tuple[str, Callable[[], Manifest], Callable[[Manifest], None], str]] = [
    ("n_iterations=0", _training_job, _set("spec.config.nIterations", 0), "nIterations"),
    ("n_iterations=10001", _training_job, _set("spec.config.nIterations", 10001), "nIterations"),
    ("batch_size=129", _training_job, _set("spec.config.batchSize", 129), "batchSize"),
    (
        "n_trajectories_per_query=17",
        _training_job,
        _set("spec.config.nTrajectoriesPerQuery", 17),
        "nTrajectoriesPerQuery",
    ),
    ("learning_rate=1.5", _training_job, _set("spec.config.learningRate", 1.5), "learningRate"),
    ("gamma=-0.1", _training_job, _set("spec.config.gamma", -0.1), "gamma"),
    ("max_budget_usd=-1", _training_job, _set("spec.config.maxBudgetUsd", "-1"), "maxBudgetUsd"),
    ("epsilon_low=1", _training_job, _set("spec.config.epsilonLow", 1.0), "epsilonLow"),
    ("n_iterations=ten", _training_job, _set("spec.config.nIterations", "ten"), "nIterations"),
    (
        "two_training_sources",
        _training_job,
        _set("spec.trainingData.uri", "s3://bucket/queries.json"),
        "trainingData",
    ),
    ("no_training_source", _training_job, _set("spec.trainingData", {}), "trainingData"),
    ("too_few_inline_queries", _training_job, _set("spec.trainingData", {"inline": []}), "inline"),
    ("unknown_loss_type", _training_job, _set("spec.config.lossType", "ppo"), "lossType"),
    ("unknown_format", _export_job, _set("spec.config.format", "docx"), "format"),
    ("unknown_privacy_level", _export_job, _set("spec.config.privacyLevel", "secret"), "privacyLevel"),
    ("unknown_export_type", _export_job, _set("spec.exportType", "everything"), "exportType"),
    (
        "date_range_end_before_start",
        _export_job,
        _set("spec.config.dateRange", {"start": "2026-01-09T00:00:00Z", "end": "2026-01-01T00:00:00Z"}),
        "dateRange",
    ),
    ("min_confidence=1.5", _export_job, _set("spec.config.filters", {"minConfidence": 1.5}), "minConfidence"),
    ("k_anonymity=1", _export_job, _set("spec.config.kAnonymity", 1), "kAnonymity"),
    ("resources_typo", _training_job, _set("spec.resources", {"limit": {"cpu": 1}}), "resources.limit"),
    (
        "resources_bad_quantity",
        _training_job,
        _set("spec.resources", {"limits": {"cpu": "2 cores"}}),
        "resources.limits.cpu",
    ),
    ("resources_negative", _training_job, _set("spec.resources", {"limits": {"cpu": -1}}), "limits.cpu"),
    ("workers_with_dotted_name", _training_job, _distributed("v.probe"), "metadata.name"),
    ("workers_with_long_name", _training_job, _distributed("v" * 53), "metadata.name"),
]


def _server_dry_run(cp: ControlPlane, namespace: str, manifest: Manifest) -> subprocess.CompletedProcess[str]:
    return cp.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False
    )


@pytest.mark.parametrize("base", [_training_job, _export_job], ids=["TrainingJob", "ExportJob"])
def test_valid_manifests_pass_server_validation(
    crds_installed: ControlPlane, examples_namespace: str, base: Callable[[], Manifest]
) -> None:
    result = _server_dry_run(crds_installed, examples_namespace, base())
    assert result.returncode == 0, result.stderr


def test_resources_take_quantities_as_numbers_or_strings(
    crds_installed: ControlPlane, examples_namespace: str
) -> None:
    manifest = _training_job()
    manifest["metadata"]["name"] = "v" * 52  # the longest name a distributed job may have
    manifest["spec"]["workers"] = 2
    manifest["spec"]["resources"] = {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": 2, "memory": "1.5e9", "nvidia.com/gpu": 1},
    }
    result = _server_dry_run(crds_installed, examples_namespace, manifest)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("case", "base", "mutate", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_manifests_are_rejected_naming_the_field(
    crds_installed: ControlPlane,
    examples_namespace: str,
    case: str,
    base: Callable[[], Manifest],
    mutate: Callable[[Manifest], None],
    field: str,
) -> None:
    manifest = copy.deepcopy(base())
    mutate(manifest)
    result = _server_dry_run(crds_installed, examples_namespace, manifest)
    assert result.returncode != 0, f"{case} was accepted"
    assert field in result.stderr, result.stderr


def test_cancellation_cannot_be_reverted(crds_installed: ControlPlane, examples_namespace: str) -> None:
    manifest = _training_job()
    manifest["metadata"]["name"] = "cancel-probe"
    manifest["spec"]["cancel"] = {"requested": True, "reason": "test"}
    crds_installed.kubectl("apply", "-n", examples_namespace, "-f", "-", input=yaml.safe_dump(manifest))
    revert = crds_installed.kubectl(
        "patch", "tj", "cancel-probe", "-n", examples_namespace, "--type=merge",
        "-p", json.dumps({"spec": {"cancel": {"requested": False}}}), check=False,
    )  # fmt: skip
    assert revert.returncode != 0 and "cannot be reverted" in revert.stderr, revert.stderr
    immutable = crds_installed.kubectl(
        "patch", "tj", "cancel-probe", "-n", examples_namespace, "--type=merge",
        "-p", json.dumps({"spec": {"config": {"nIterations": 11}}}), check=False,
    )  # fmt: skip
    assert immutable.returncode != 0 and "config is immutable" in immutable.stderr, immutable.stderr


def test_status_subresource_is_strict(crds_installed: ControlPlane, examples_namespace: str) -> None:
    _ensure_examples(crds_installed, examples_namespace)

    def patch_status(status: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return crds_installed.kubectl(
            "patch", "tj", "tool-agent-example", "-n", examples_namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}), check=False,
        )  # fmt: skip

    good = patch_status(
        {"phase": "Running", "progressPercent": 25.0, "costUsd": "0.40", "currentIteration": 5}
    )
    assert good.returncode == 0, good.stderr
    bad = patch_status({"progressPercent": 150.0})
    assert bad.returncode != 0 and "progressPercent" in bad.stderr, bad.stderr
    bad_money = patch_status({"costUsd": 0.4})
    assert bad_money.returncode != 0 and "costUsd" in bad_money.stderr, bad_money.stderr


def test_get_shows_the_printer_columns(crds_installed: ControlPlane, examples_namespace: str) -> None:
    _ensure_examples(crds_installed, examples_namespace)
    header = crds_installed.kubectl("get", "tj", "-n", examples_namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "PROGRESS", "COST", "AGE"]
    header = crds_installed.kubectl("get", "ej", "-n", examples_namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "FORMAT", "ROWS", "AGE"]
    # The category lists both kinds.
    out = crds_installed.kubectl("get", "agentcore", "-n", examples_namespace, "-o", "name").stdout
    assert "trainingjob.training.agentcore.io/tool-agent-example" in out
    assert "exportjob.training.agentcore.io/tool-agent-trajectories" in out


def test_explain_shows_the_descriptions(crds_installed: ControlPlane) -> None:
    out = _retry(lambda: _explain_ok(crds_installed, "trainingjob.spec.config"))
    assert "GRPO training configuration" in out
    assert "nIterations" in out and "Number of GRPO training iterations" in out
    field = _retry(lambda: _explain_ok(crds_installed, "exportjob.spec.config.privacyLevel"))
    assert "anonymized" in field


def _explain_ok(cp: ControlPlane, path: str) -> str:
    result = cp.kubectl("explain", path, check=False)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)
