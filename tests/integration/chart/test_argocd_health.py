"""The Argo CD health checks of docs/argocd, run by a real Lua 5.1 interpreter (Argo CD's
gopher-lua implements 5.1) against sample TrainingJob and ExportJob objects."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentcore.devenv import tools

REPO = Path(__file__).resolve().parents[3]
ARGOCD = REPO / "docs" / "argocd"
TRAININGJOB = ARGOCD / "trainingjob-health.lua"
EXPORTJOB = ARGOCD / "exportjob-health.lua"

HARNESS = """
obj = %s
local check = assert(loadfile(%s))
local hs = check()
assert(type(hs) == "table", "the script must return a table")
io.write(tostring(hs.status), "\\n", tostring(hs.message))
"""


def lua_literal(value: Any) -> str:
    """A Python value (decoded JSON) as a Lua table constructor."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for these samples
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"


@pytest.fixture(scope="module")
def lua() -> Path:
    found = tools.lua_interpreter()
    if found is None:
        pytest.fail("no Lua interpreter: run scripts/bootstrap (installs the Debian package lua5.1)")
    return found


def health(lua: Path, script: Path, obj: dict[str, Any], tmp_path: Path) -> tuple[str, str]:
    harness = tmp_path / "harness.lua"
    harness.write_text(HARNESS % (lua_literal(obj), json.dumps(str(script))))
    proc = subprocess.run([str(lua), str(harness)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    status, _, message = proc.stdout.partition("\n")
    return status, message


def tj(status: dict[str, Any] | None, suspend: bool = False, generation: int = 1) -> dict[str, Any]:
    spec: dict[str, Any] = {"agentId": "a", "config": {"nIterations": 40}}
    if suspend:
        spec["suspend"] = True
    obj: dict[str, Any] = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "tj", "namespace": "ns", "generation": generation},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = {"observedGeneration": 1, **status}
    return obj


def cond(kind: str, status: str, reason: str = "R") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": "m", "lastTransitionTime": "t"}


TRAINING_CASES = [
    ("no status", tj(None), "Progressing", "Waiting for the operator"),
    ("queued", tj({"phase": "Queued", "totalIterations": 40}), "Progressing", "Queued (iteration 0/40)"),
    (
        "running",
        tj(
            {
                "phase": "Running",
                "currentIteration": 12,
                "totalIterations": 40,
                "progressPercent": 30.0,
                "costUsd": "0.42",
                "conditions": [cond("Running", "True")],
            }
        ),
        "Progressing",
        "Running (iteration 12/40), 30%, $0.42 spent",
    ),
    (
        "spec changed, not yet observed",
        tj({"phase": "Running", "currentIteration": 3}, generation=2),
        "Progressing",
        "observe generation 2",
    ),
    (
        "completed",
        tj(
            {
                "phase": "Completed",
                "currentIteration": 40,
                "totalIterations": 40,
                "reason": "TrainingComplete",
            }
        ),
        "Healthy",
        "Training completed (iteration 40/40)",
    ),
    (
        "failed",
        tj(
            {
                "phase": "Failed",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the backoff limit",
                "conditions": [cond("Failed", "True")],
            }
        ),
        "Degraded",
        "BackoffLimitExceeded: Job has reached the backoff limit",
    ),
    (
        "budget exceeded",
        tj(
            {
                "phase": "Failed",
                "reason": "BudgetExceeded",
                "message": "cost $5.00 reached the budget $5.00",
                "conditions": [cond("BudgetExceeded", "True")],
            }
        ),
        "Degraded",
        "BudgetExceeded: cost $5.00",
    ),
    (
        "suspending",
        tj(
            {
                "phase": "Running",
                "currentIteration": 20,
                "totalIterations": 40,
                "conditions": [cond("Suspended", "Unknown", "Suspending")],
            },
            suspend=True,
        ),
        "Progressing",
        "Suspending",
    ),
    (
        "suspended",
        tj(
            {
                "phase": "Running",
                "currentIteration": 20,
                "totalIterations": 40,
                "conditions": [cond("Running", "False", "Suspended"), cond("Suspended", "True", "Suspended")],
            },
            suspend=True,
        ),
        "Suspended",
        "Suspended (iteration 20/40)",
    ),
    ("suspended before start", tj(None, suspend=True), "Suspended", "Suspended (iteration 0/40)"),
    (
        "resumed",
        tj(
            {
                "phase": "Running",
                "currentIteration": 20,
                "conditions": [cond("Suspended", "False", "Resumed")],
            }
        ),
        "Progressing",
        "Running",
    ),
    (
        "cancelled",
        tj(
            {
                "phase": "Cancelled",
                "currentIteration": 7,
                "totalIterations": 40,
                "cancellation": {"reason": "wrong dataset", "iterationsCompleted": 7},
            }
        ),
        "Healthy",
        "Cancelled: wrong dataset (iteration 7/40)",
    ),
    (
        "cancelled while suspended",
        tj({"phase": "Cancelled", "cancellation": {"reason": "stop"}}, suspend=True),
        "Healthy",
        "Cancelled: stop",
    ),
    ("unknown phase", tj({"phase": "Exploded"}), "Unknown", "Unrecognised phase Exploded"),
]


@pytest.mark.parametrize(
    ("obj", "status", "message"), [c[1:] for c in TRAINING_CASES], ids=[c[0] for c in TRAINING_CASES]
)
def test_trainingjob_health(
    lua: Path, tmp_path: Path, obj: dict[str, Any], status: str, message: str
) -> None:
    got_status, got_message = health(lua, TRAININGJOB, obj, tmp_path)
    assert got_status == status
    assert message in got_message, got_message


def ej(status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "ExportJob",
        "metadata": {"name": "ej", "namespace": "ns", "generation": 1},
        "spec": {"exportType": "trajectories", "config": {"format": "csv"}},
    }
    if status is not None:
        obj["status"] = {"observedGeneration": 1, **status}
    return obj


EXPORT_CASES = [
    ("no status", ej(None), "Progressing", "Waiting for the operator"),
    ("pending", ej({"phase": "Pending"}), "Progressing", "Pending"),
    (
        "queued behind others",
        ej({"phase": "Pending", "positionInQueue": 2}),
        "Progressing",
        "2 export(s) ahead",
    ),
    ("running", ej({"phase": "Running"}), "Progressing", "Generating"),
    (
        "completed",
        ej({"phase": "Completed", "output": {"rowCount": 1200, "fileName": "trajectories.csv"}}),
        "Healthy",
        "Export completed, 1200 rows, trajectories.csv",
    ),
    (
        "failed",
        ej({"phase": "Failed", "error": "bucket not found"}),
        "Degraded",
        "Export failed: bucket not found",
    ),
    ("failed silently", ej({"phase": "Failed"}), "Degraded", "no details"),
    ("cancelled", ej({"phase": "Cancelled"}), "Healthy", "Export cancelled"),
]


@pytest.mark.parametrize(
    ("obj", "status", "message"), [c[1:] for c in EXPORT_CASES], ids=[c[0] for c in EXPORT_CASES]
)
def test_exportjob_health(lua: Path, tmp_path: Path, obj: dict[str, Any], status: str, message: str) -> None:
    got_status, got_message = health(lua, EXPORTJOB, obj, tmp_path)
    assert got_status == status
    assert message in got_message, got_message


def test_phases_of_the_api_are_all_covered() -> None:
    """Every phase the API models define has a sample above (a new phase needs a health rule)."""
    from agentcore.api.exports import ExportPhase
    from agentcore.api.training import TrainingPhase

    training = {c[1].get("status", {}).get("phase") for c in TRAINING_CASES}
    exports = {c[1].get("status", {}).get("phase") for c in EXPORT_CASES}
    assert {p.value for p in TrainingPhase} <= training
    assert {p.value for p in ExportPhase} <= exports


def test_configmap_patch_embeds_the_scripts_verbatim() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())["data"]
    prefix = "resource.customizations.health.training.agentcore.io_"
    assert patch[prefix + "TrainingJob"] == TRAININGJOB.read_text()
    assert patch[prefix + "ExportJob"] == EXPORTJOB.read_text()
