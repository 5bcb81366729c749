"""The trainer's status reports retry transient apiserver failures and surface the others."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from agentcore.kube.client import ApiError
from agentcore_trainer.runtime.reporting import KubeStatusSink


class FlakyKube:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.patches: list[dict[str, Any]] = []

    async def patch(
        self, res: Any, name: str, body: dict[str, Any], namespace: str, sub: str
    ) -> dict[str, Any]:
        self.patches.append(body)
        if self.failures:
            raise self.failures.pop(0)
        return body


def sink(kube: FlakyKube, attempts: int = 5) -> KubeStatusSink:
    return KubeStatusSink(kube, "ns", "job", attempts=attempts, backoff=0)  # type: ignore[arg-type]


async def test_transient_failures_are_retried() -> None:
    kube = FlakyKube(ApiError(500, {"message": "etcd"}), TimeoutError())
    await sink(kube).report({"currentIteration": 3})
    assert len(kube.patches) == 3 and kube.patches[-1] == {"status": {"currentIteration": 3}}


async def test_a_restarting_apiserver_dropping_the_connection_is_retried() -> None:
    # What a kube-apiserver restart looks like to aiohttp (the chaos suite found the trainer failing).
    kube = FlakyKube(aiohttp.ServerDisconnectedError(), aiohttp.ClientPayloadError("cut"))
    await sink(kube).report({"currentIteration": 4})
    assert len(kube.patches) == 3


async def test_a_denial_right_after_an_apiserver_restart_is_retried() -> None:
    # The chaos suite, seed 1001171259: a trainer's first patch after a kube-apiserver restart got
    # 403 (RBAC informers not synced yet) and failed the run.
    kube = FlakyKube(ApiError(403, {"message": "forbidden"}), ApiError(401, {"message": "Unauthorized"}))
    await sink(kube).report({"currentIteration": 5})
    assert len(kube.patches) == 3


async def test_a_denial_that_lasts_is_raised_after_the_attempts() -> None:
    kube = FlakyKube(*[ApiError(403, {"message": "forbidden"})] * 10)
    with pytest.raises(ApiError):
        await sink(kube, attempts=3).report({"currentIteration": 1})
    assert len(kube.patches) == 3


async def test_a_schema_error_is_raised_at_once() -> None:
    kube = FlakyKube(ApiError(422, {"message": "status.costUsd: invalid"}))
    with pytest.raises(ApiError):
        await sink(kube).report({"costUsd": "x"})
    assert len(kube.patches) == 1


async def test_it_gives_up_after_the_attempts_without_stopping_training() -> None:
    kube = FlakyKube(*[OSError("unreachable")] * 10)
    await sink(kube, attempts=3).report({"currentIteration": 1})
    assert len(kube.patches) == 3


async def test_a_report_given_up_on_is_sent_with_the_next_one() -> None:
    # The chaos suite, seed 675173881: iteration 40's report was lost to a kube-apiserver restart
    # and the run completed with status.currentIteration 39.
    kube = FlakyKube(*[OSError("unreachable")] * 3)
    reporter = sink(kube, attempts=3)
    await reporter.report({"currentIteration": 40, "metrics": {"avgReward": 0.5, "kl": 0.1}})
    await reporter.report({"trainer": {"state": "Completed"}, "metrics": {"kl": 0.2}})
    assert kube.patches[-1] == {
        "status": {
            "currentIteration": 40,
            "metrics": {"avgReward": 0.5, "kl": 0.2},
            "trainer": {"state": "Completed"},
        }
    }
    await reporter.report({"currentIteration": 41})
    assert kube.patches[-1] == {"status": {"currentIteration": 41}}  # sent once, then forgotten


async def test_the_final_report_outlasts_the_attempts() -> None:
    kube = FlakyKube(*[OSError("unreachable")] * 6)
    await sink(kube, attempts=3).report({"trainer": {"state": "Completed"}}, final=True)
    assert len(kube.patches) == 7 and kube.patches[-1] == {"status": {"trainer": {"state": "Completed"}}}
