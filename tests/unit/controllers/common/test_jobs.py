"""Suspending a child Job: never one that ended, and only as the view that decided it saw it."""

from __future__ import annotations

from typing import Any

import pytest

from agentcore.api.batchjob import BatchJob
from agentcore.controllers.common.jobs import set_suspend


class Recorder:
    def __init__(self) -> None:
        self.patches: list[tuple[str, dict[str, Any], str | None]] = []

    async def patch(self, res: Any, name: str, body: dict[str, Any], namespace: str | None = None) -> dict:
        self.patches.append((name, body, namespace))
        return {"metadata": {"name": name, "resourceVersion": "8"}, "spec": body["spec"]}


def job(status: dict[str, Any] | None = None, **spec: Any) -> BatchJob:
    return BatchJob.parse(
        {"metadata": {"name": "tj-trainer", "resourceVersion": "7"}, "spec": spec, "status": status or {}}
    )


@pytest.mark.parametrize(
    "view",
    [
        job({"conditions": [{"type": "Complete", "status": "True"}]}),
        job({"conditions": [{"type": "Failed", "status": "True"}]}),
        job({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}),  # pods still ending
        job({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
        job({"succeeded": 1, "active": 0}),  # counted before any condition
        job({"succeeded": 3}, completions=3),
    ],
)
async def test_a_job_that_ended_or_is_ending_is_never_suspended(view):
    kube = Recorder()
    assert view.ending
    assert await set_suspend(kube, view, True, "ns") is None  # type: ignore[arg-type]
    assert kube.patches == []


async def test_a_running_job_is_suspended_under_the_view_s_resource_version():
    kube = Recorder()
    running = job({"active": 1, "succeeded": 1}, completions=2)  # one of two workers done
    assert not running.ending
    await set_suspend(kube, running, True, "ns")  # type: ignore[arg-type]
    body = {"spec": {"suspend": True}, "metadata": {"resourceVersion": "7"}}
    assert kube.patches == [("tj-trainer", body, "ns")]


async def test_nothing_is_patched_when_the_job_is_so_already():
    kube = Recorder()
    assert await set_suspend(kube, job({"active": 1}, suspend=True), True, "ns") is None  # type: ignore[arg-type]
    assert await set_suspend(kube, job({"active": 1}), False, "ns") is None  # type: ignore[arg-type]
    assert kube.patches == []
