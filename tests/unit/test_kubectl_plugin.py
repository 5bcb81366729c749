"""kubectl agentcore: argument parsing, the exact patches sent, describe's text, the logs fallback."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest

from agentcore import kubectl_plugin as plugin
from agentcore.kube.client import EVENTS, PODS, TRAININGJOB_RESOURCE, ApiError

SPEC = {
    "agentId": "agent-1",
    "config": {"nIterations": 10, "maxBudgetUsd": "5.00"},
    "trainingData": {"uri": "s3://b/q.json"},
}


def job(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "foo", "namespace": "bar"},
        "spec": {**SPEC, **spec},
    }
    if status is not None:
        obj["status"] = status
    return obj


class FakeKube:
    """Records calls; answers from `objects` (missing: 404)."""

    def __init__(self, objects: dict[str, Any] | None = None) -> None:
        self.objects = objects or {}
        self.calls: list[tuple[Any, ...]] = []

    def _answer(self, key: str) -> Any:
        if key not in self.objects:
            raise ApiError(404, {"message": "not found", "reason": "NotFound"})
        return self.objects[key]

    async def get(self, res, name, namespace=None):
        self.calls.append(("get", res, name, namespace))
        return self._answer(f"{res.plural}/{name}")

    async def list(self, res, namespace=None, **params):
        self.calls.append(("list", res, namespace, params))
        return {"items": self.objects.get(res.plural, [])}

    async def patch(self, res, name, body, namespace=None):
        self.calls.append(("patch", res, name, body, namespace))
        return self._answer(f"{res.plural}/{name}")


def parse(*argv: str) -> argparse.Namespace:
    return plugin.build_parser().parse_args(argv)


async def call(kube: FakeKube, *argv: str) -> str:
    out = io.StringIO()
    assert await parse(*argv).tj_func(kube, parse(*argv), out) == 0
    return out.getvalue()


def test_options_before_or_after_the_verb():
    assert parse("-n", "x", "cancel", "foo").namespace == "x"
    args = parse("cancel", "foo", "--namespace", "y", "--reason", "why", "--kubeconfig", "/k")
    assert (args.name, args.namespace, args.reason, args.kubeconfig) == ("foo", "y", "why", "/k")
    assert not hasattr(parse("suspend", "foo"), "namespace")  # the context's namespace then
    assert parse("logs", "foo", "-f").follow and parse("resume", "foo").suspend is False


@pytest.mark.parametrize(
    ("argv", "spec"),
    [
        (
            ("cancel", "foo", "-n", "bar", "--reason", "wrong data"),
            {"cancel": {"requested": True, "reason": "wrong data"}},
        ),
        (("cancel", "foo", "-n", "bar"), {"cancel": {"requested": True}}),
        (("suspend", "foo", "-n", "bar"), {"suspend": True}),
        (("resume", "foo", "-n", "bar"), {"suspend": False}),
    ],
)
async def test_verbs_send_merge_patches_of_the_spec(argv, spec):
    kube = FakeKube({"trainingjobs/foo": job()})
    await call(kube, *argv)
    assert kube.calls == [("patch", TRAININGJOB_RESOURCE, "foo", {"spec": spec}, "bar")]


async def test_missing_job_is_named():
    with pytest.raises(plugin.PluginError, match="TrainingJob foo not found in namespace bar"):
        await call(FakeKube(), "describe", "foo", "-n", "bar")


async def test_suspending_a_finished_job_says_so():
    kube = FakeKube({"trainingjobs/foo": job({"phase": "Completed"})})
    assert "already finished (Completed)" in await call(kube, "suspend", "foo", "-n", "bar")


def test_describe_renders_progress_cost_conditions_checkpoints_events():
    status = {
        "phase": "Running",
        "currentIteration": 4,
        "totalIterations": 10,
        "progressPercent": 40.0,
        "costUsd": "1.20",
        "budgetUsd": "5.00",
        "budgetRemainingPercent": 76.0,
        "conditions": [
            {
                "type": "Running",
                "status": "True",
                "reason": "TrainerStarted",
                "message": "pod up",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "checkpoints": [
            {"id": "ck-4", "iteration": 4, "uri": "s3://b/ck-4", "createdAt": "2026-01-01T00:01:00Z"}
        ],
        "bestCheckpointId": "ck-4",
    }
    events = [
        {
            "metadata": {},
            "type": "Normal",
            "reason": "Started",
            "message": "trainer running",
            "lastTimestamp": "2026-01-01T00:00:05Z",
            "count": 2,
        }
    ]
    text = plugin.render_describe(plugin.TrainingJob.model_validate(job(status, suspend=True)), events)
    for expected in (
        "Phase:       Running",
        "Spec:        suspended",
        "Progress:    4/10 iterations (40.0%)",
        "Cost:        $1.20 of $5.00 budget, 76.0% left",
        "Running=True  TrainerStarted: pod up",
        "Checkpoints: 1 (best: ck-4)",
        "ck-4  iteration 4  s3://b/ck-4",
        "Normal  Started: trainer running (x2)",
    ):
        assert expected in text, text


async def test_describe_lists_the_jobs_events():
    kube = FakeKube({"trainingjobs/foo": job()})
    assert "Events:\n  <none>" in await call(kube, "describe", "foo", "-n", "bar")
    selector = "involvedObject.kind=TrainingJob,involvedObject.name=foo"
    assert kube.calls[-1] == ("list", EVENTS, "bar", {"fieldSelector": selector})


def trainer_pod() -> dict[str, Any]:
    meta = {"name": "foo-abc", "namespace": "bar", "uid": "12345678-aaaa", "creationTimestamp": "t"}
    return {"metadata": meta, "spec": {"containers": [{"name": "trainer"}]}}


async def unavailable(*args):
    raise ApiError(500, {"message": "dial tcp 127.0.0.1:0: connection refused"})
    yield b""


async def test_logs_fall_back_to_the_node_agents_file(tmp_path: Path):
    log = tmp_path / "node" / "pods" / "bar" / "foo-abc-12345678" / "trainer.log"
    log.parent.mkdir(parents=True)
    log.write_text("iteration 1\n")
    kube = FakeKube({"trainingjobs/foo": job(), "pods": [trainer_pod()]})
    args = parse("logs", "foo", "-n", "bar", "--kubeconfig", str(tmp_path / "kubeconfig"))
    out = io.StringIO()
    assert await plugin.show_logs(kube, args, out, unavailable) == 0
    assert out.getvalue() == "iteration 1\n"
    assert kube.calls[1] == ("list", PODS, "bar", {"labelSelector": "training.agentcore.io/trainingjob=foo"})


async def test_logs_unavailable_says_where_the_file_is(tmp_path: Path):
    kube = FakeKube({"trainingjobs/foo": job(), "pods": [trainer_pod()]})
    args = parse("logs", "foo", "-n", "bar", "--kubeconfig", str(tmp_path / "kubeconfig"))
    with pytest.raises(plugin.PluginError, match=r"node/pods/bar/foo-abc-12345678/trainer\.log"):
        await plugin.show_logs(kube, args, io.StringIO(), unavailable)


async def test_logs_without_a_pod():
    with pytest.raises(plugin.PluginError, match="TrainingJob foo in namespace bar has no trainer pod"):
        await call(FakeKube({"trainingjobs/foo": job()}), "logs", "foo", "-n", "bar")


async def test_following_the_file_stops_when_the_pod_finished(tmp_path: Path):
    log = tmp_path / "trainer.log"
    log.write_text("done\n")
    pod = trainer_pod()
    kube = FakeKube({"pods/foo-abc": {**pod, "status": {"phase": "Succeeded"}}})
    out = io.StringIO()
    await plugin._tail(kube, pod, log, out, follow=True, poll=0)
    assert out.getvalue() == "done\n" and kube.calls == [("get", PODS, "foo-abc", "bar")]
