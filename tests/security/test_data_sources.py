"""Red team, as a tenant with kubectl in one namespace: a TrainingJob's data URI cannot make the
operator read /dev/zero (the old crash loop: unbounded read → OOM kill → resync → again) or
another tenant's objects; the operator fails that job and keeps serving everyone else."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import get_json, wait_for
from tests.integration.controllers.test_trainingjob import add_queries, phase_is, training_job

pytestmark = pytest.mark.integration


def with_uri(name: str, uri: str) -> str:
    doc = yaml.safe_load(training_job(name, 10))
    doc["spec"]["trainingData"] = {"uri": uri}
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    "uri",
    [
        "file:///dev/zero",
        "file:///etc/passwd",
        "s3://another-tenants-bucket/datasets/queries.json",
        "s3://{bucket}/agentcore/datasets/some-other-namespace/job/training.json",
    ],
)
def test_data_uris_outside_the_tenant_prefix_fail_validation(control_plane, operator, namespace, uri):
    uri = uri.format(bucket=operator.bucket)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=with_uri("bad-uri", uri))
    done = wait_for(lambda: phase_is(control_plane, namespace, "bad-uri", "Failed"), 60, what="refusal")
    assert done["status"]["reason"] == "ValidationFailed"
    assert "is not allowed" in done["status"]["message"] and uri in done["status"]["message"]
    assert get_json(control_plane, "-n", namespace, "get", "jobs")["items"] == []

    # The operator is alive and still serves the tenant: a valid job gets its trainer Job.
    add_queries(control_plane, namespace)
    control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job("good", 1))
    wait_for(
        lambda: get_json(control_plane, "-n", namespace, "get", "jobs")["items"],
        60,
        what="the good job's Job",
    )
    assert operator.proc is not None and operator.proc.alive()
    assert operator.starts == 1  # never restarted
