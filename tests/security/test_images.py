"""Red team, as a tenant with kubectl in one namespace: `spec.image` chose the trainer pod's image
with no allow-list, so any image ran next to the job's credentials. Now only the platform's trainer
image or one of the operator's allowed images runs; anything else fails validation, no Job."""

from __future__ import annotations

import pytest
import yaml

from agentcore.controllers.common.config import OperatorConfig
from tests.conftest import get_json, wait_for
from tests.integration.controllers.test_trainingjob import add_queries, phase_is, training_job

pytestmark = pytest.mark.integration


def test_an_image_outside_the_allow_list_fails_validation(control_plane, operator, namespace):
    add_queries(control_plane, namespace)
    doc = yaml.safe_load(training_job("own-image", 1))
    doc["spec"]["image"] = "attacker.example.com/exfiltrate:latest"
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(doc))
    done = wait_for(lambda: phase_is(control_plane, namespace, "own-image", "Failed"), 60, what="refusal")
    assert done["status"]["reason"] == "ValidationFailed"
    assert "spec.image" in done["status"]["message"] and "attacker.example.com" in done["status"]["message"]
    assert get_json(control_plane, "-n", namespace, "get", "jobs")["items"] == []


def test_the_allow_list_rule():
    config = OperatorConfig(trainer_image="ghcr.io/agentcore/trainer:1", allowed_images="reg.corp/ml/*,x/y:2")
    assert config.allowed_images == ("reg.corp/ml/*", "x/y:2")
    for ok in (None, "ghcr.io/agentcore/trainer:1", "reg.corp/ml/agent:3", "x/y:2"):
        assert config.image_refused(ok) is None, ok
    for bad in ("reg.corp/other/agent:3", "x/y:3", "reg.corp/ml", "ghcr.io/agentcore/trainer:2"):
        assert "spec.image" in (config.image_refused(bad) or ""), bad
    assert OperatorConfig().image_refused("anything/else") is not None  # empty list: none allowed


def test_images_can_be_opted_in_for_one_namespace_only():
    config = OperatorConfig(allowed_images_by_namespace={"team-a": ("reg.corp/team-a/*",)})
    assert config.image_refused("reg.corp/team-a/agent:1", "team-a") is None
    refused = config.image_refused("reg.corp/team-a/agent:1", "team-b") or ""
    assert "spec.image" in refused and "team-b" in refused


def test_the_per_namespace_list_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AGENTCORE_ALLOWED_IMAGES_BY_NAMESPACE", '{"team-a": ["reg.corp/a/*", "x/y:1"]}')
    assert OperatorConfig.from_env().allowed_images_by_namespace == {"team-a": ("reg.corp/a/*", "x/y:1")}
    monkeypatch.setenv("AGENTCORE_ALLOWED_IMAGES_BY_NAMESPACE", "{}")  # what the chart renders by default
    assert OperatorConfig.from_env().allowed_images_by_namespace == {}
