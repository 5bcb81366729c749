"""Red team, as a tenant with kubectl in one namespace: two TrainingJobs whose names share their
first 63 characters each get their own trainer Job (children were named by cutting at 63
characters, and a 409 adopted the other job's Job, so one job's pod trained for both)."""

from __future__ import annotations

import pytest

from tests.conftest import get_json, wait_for
from tests.integration.controllers.test_trainingjob import add_queries, training_job

pytestmark = pytest.mark.integration
COMMON = "long-" + "x" * 58  # 63 characters


def test_names_sharing_63_characters_get_distinct_jobs(control_plane, operator, namespace):
    add_queries(control_plane, namespace)
    names = [f"{COMMON}-first", f"{COMMON}-second"]
    for name in names:
        control_plane.kubectl("-n", namespace, "apply", "-f", "-", input=training_job(name, 1))

    def jobs() -> list[dict] | None:
        items = get_json(control_plane, "-n", namespace, "get", "jobs")["items"]
        return items if len(items) == 2 else None

    found = wait_for(jobs, 90, what="two trainer Jobs")
    owners = sorted(ref["name"] for job in found for ref in job["metadata"]["ownerReferences"])
    assert owners == sorted(names)
    assert all(len(job["metadata"]["name"]) <= 63 for job in found)
