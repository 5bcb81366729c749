"""Red team, as a tenant with kubectl in one namespace: a TrainingJob cannot borrow a Secret of the
namespace that was not labelled for TrainingJobs — not through ``trainingData.secretKeyRef`` (the
old trainer Role granted ``get`` on whatever Secret it named, every key of it, to a pod running the
tenant's image) and not as a webhook's HMAC key (``secretRef``)."""

from __future__ import annotations

import json

import pytest
import yaml

from agentcore.api.labels import USABLE_BY_TRAININGJOBS
from agentcore_trainer.datasets import generate
from tests.conftest import get_json, wait_for
from tests.integration.controllers.test_trainingjob import add_queries, phase_is, training_job

pytestmark = pytest.mark.integration
EXPORT_KEY = "agentcore-export-key"  # the tenant's pseudonym key Secret (exports/keys.py)


def _export_key_secret(cp, ns: str) -> None:
    # One key parses as queries, so only the label rule can stop it; the other is the pseudonym key.
    queries = json.dumps(generate(120, seed=3))
    cp.kubectl(
        "-n", ns, "create", "secret", "generic", EXPORT_KEY,
        f"--from-literal=queries.json={queries}", "--from-literal=key=pseudonym-key-material",
    )  # fmt: skip


def _roles_granting(cp, ns: str, secret: str) -> list[str]:
    return [
        role["metadata"]["name"]
        for role in get_json(cp, "-n", ns, "get", "roles")["items"]
        for rule in role.get("rules") or []
        if "secrets" in rule.get("resources", []) and secret in rule.get("resourceNames", [])
    ]


def test_secret_key_ref_to_an_unlabelled_secret_fails_and_grants_nothing(control_plane, operator, namespace):
    _export_key_secret(control_plane, namespace)
    doc = yaml.safe_load(training_job("steal-key", 1))
    doc["spec"]["trainingData"] = {"secretKeyRef": {"name": EXPORT_KEY, "key": "queries.json"}}
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(doc))
    done = wait_for(lambda: phase_is(control_plane, namespace, "steal-key", "Failed"), 60, what="refusal")
    assert done["status"]["reason"] == "ValidationFailed"
    message = done["status"]["message"]
    assert (
        "trainingData.secretKeyRef" in message and EXPORT_KEY in message and USABLE_BY_TRAININGJOBS in message
    )
    assert _roles_granting(control_plane, namespace, EXPORT_KEY) == []
    assert get_json(control_plane, "-n", namespace, "get", "jobs")["items"] == []


def test_webhook_secret_ref_to_an_unlabelled_secret_fails(control_plane, operator, namespace):
    add_queries(control_plane, namespace)
    _export_key_secret(control_plane, namespace)
    hook = {
        "url": "https://hooks.example.com/x",
        "events": ["training.job.completed"],
        "secretRef": {"name": EXPORT_KEY, "key": "key"},
    }
    control_plane.kubectl(
        "-n", namespace, "apply", "-f", "-", input=training_job("hmac-oracle", 1, webhook=hook)
    )
    done = wait_for(lambda: phase_is(control_plane, namespace, "hmac-oracle", "Failed"), 60, what="refusal")
    assert done["status"]["reason"] == "ValidationFailed"
    assert "webhooks[0].secretRef" in done["status"]["message"] and EXPORT_KEY in done["status"]["message"]

    # Labelled for this use, the same Secret is accepted: the job gets its trainer Job.
    control_plane.kubectl("-n", namespace, "label", "secret", EXPORT_KEY, f"{USABLE_BY_TRAININGJOBS}=true")
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("signed", 1, webhook=hook))
    wait_for(
        lambda: get_json(control_plane, "-n", namespace, "get", "jobs")["items"], 60, what="the labelled job"
    )
