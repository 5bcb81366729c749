"""training.start_grpo: the TrainingJob it creates, where the data goes, and every validation error."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agentcore.auth.tokens import ANONYMOUS
from agentcore.kube.client import ApiError
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.dispatch import CallContext
from agentcore.server.jsonrpc.jobcache import JobCache
from agentcore.server.jsonrpc.jobs import ANNOTATION_CREATED_BY, LABEL_AGENT_ID, LABEL_MANAGED_BY
from agentcore.server.jsonrpc.models import StartGrpoParams, StartGrpoResult
from agentcore.server.jsonrpc.training import TrainingOptions, TrainingService
from tests.unit.server.jsonrpc.conftest import Api, make_settings, token
from tests.unit.server.jsonrpc.helpers import SPEC_START, queries

SPEC_EXAMPLE = SPEC_START


async def test_spec_example_creates_a_trainingjob(api: Api) -> None:
    result = await api.result("training.start_grpo", SPEC_EXAMPLE)
    StartGrpoResult.validate_exact(result)
    assert result["status"] == "queued" and result["agent_id"] == "code-generator-v2"
    assert result["total_iterations"] == 500 and result["namespace"] == "team-a"
    obj = api.kube.find(result["job_id"])  # job_id is the resource's uid
    meta, spec = obj["metadata"], obj["spec"]
    assert re.fullmatch(r"code-generator-v2-[0-9a-f]{8}", meta["name"]) and meta["name"] == result["name"]
    assert meta["labels"] == {LABEL_AGENT_ID: "code-generator-v2", LABEL_MANAGED_BY: "agentcore-api"}
    assert meta["annotations"] == {ANNOTATION_CREATED_BY: "alice"}
    assert meta["creationTimestamp"] == result["created_at"]
    assert spec["config"]["nIterations"] == 500 and spec["config"]["maxBudgetUsd"] == "50.00"
    assert len(spec["trainingData"]["inline"]) == 100
    assert spec["trainingData"]["inline"][0] == {
        "query": "Write a function to sort a list",
        "expectedOutcome": {"test_passed": True, "execution_time_ms": 100},
    }
    assert spec["evaluationData"]["inline"][0]["query"] == "Write a binary search function"
    # Visible at once (read-your-writes), before the watch delivers it.
    status = await api.result("training.get_status", {"job_id": result["job_id"]})
    assert status["status"] == "queued"


async def test_config_defaults(api: Api) -> None:
    result = await api.result(
        "training.start_grpo", {"agent_id": "a", "config": {}, "training_data": queries(100)}
    )
    assert result["total_iterations"] == 1000
    config = api.kube.find(result["job_id"])["spec"]["config"]
    assert config["batchSize"] == 16 and config["maxBudgetUsd"] == "100.00"


async def test_agent_id_becomes_a_dns_name(api: Api) -> None:
    result = await api.start(agent_id="My_Agent.v2" + "x" * 50)
    assert re.fullmatch(r"my-agent-v2x{29}-[0-9a-f]{8}", result["name"])
    assert api.kube.find(result["job_id"])["metadata"]["labels"][LABEL_AGENT_ID] == "My_Agent.v2" + "x" * 50


@pytest.mark.parametrize(
    ("config", "field", "rule"),
    [
        ({"n_iterations": 0}, "n_iterations", "Must be between 1 and 10000"),
        ({"n_iterations": 10001}, "n_iterations", "Must be between 1 and 10000"),
        ({"batch_size": 129}, "batch_size", "Must be between 1 and 128"),
        ({"learning_rate": 1.5}, "learning_rate", "Must be between 0.0 and 1.0"),
        ({"checkpoint_interval": 0}, "checkpoint_interval", "Must be >= 1"),
        ({"gamma": -0.1}, "gamma", "Must be between 0.0 and 1.0"),
        ({"max_budget_usd": -1}, "max_budget_usd", None),
        ({"nIterations": 0}, "n_iterations", "Must be between 1 and 10000"),  # alias, reported snake_case
        ({"n_iterations": "many"}, "n_iterations", None),
        ({"unknown_knob": 1}, "unknown_knob", None),
        ({"reward_functions": [{"entry_point": "no colon"}]}, "reward_functions[0].entry_point", None),
    ],
)
async def test_invalid_config_is_the_specs_32600(
    api: Api, config: dict[str, Any], field: str, rule: str | None
) -> None:
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "config": config})
    assert error["code"] == errors.INVALID_REQUEST
    assert error["message"] == "Invalid training configuration"
    assert error["data"]["field"] == field
    if rule:
        assert error["data"]["error"] == rule


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"config": {}, "training_data": queries(100)}, "agent_id"),
        ({"agent_id": "bad id!", "config": {}, "training_data": queries(100)}, "agent_id"),
        ({"agent_id": "a" * 64, "config": {}, "training_data": queries(100)}, "agent_id"),
        ({"agent_id": 7, "config": {}, "training_data": queries(100)}, "agent_id"),
        ({"agent_id": "a", "training_data": queries(100)}, "config"),
        ({"agent_id": "a", "config": "fast", "training_data": queries(100)}, "config"),
        ({"agent_id": "a", "config": {}}, "training_data"),
        ({"agent_id": "a", "config": {}, "training_data": "queries"}, "training_data"),
        ({"agent_id": "a", "config": {}, "training_data": queries(100), "namespace": "Bad_NS"}, "namespace"),
    ],
)
async def test_missing_or_mistyped_params(api: Api, params: dict[str, Any], field: str) -> None:
    error = await api.error("training.start_grpo", params)
    assert error["code"] == errors.INVALID_PARAMS
    assert error["data"]["field"] == field


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        (queries(5), "training_data", "Must contain at least 100 items (got 5)"),
        ([], "training_data", "Must contain at least 100 items (got 0)"),
        ([*queries(99), {"expected_outcome": {}}], "training_data[99].query", "Field required"),
        ([*queries(99), {"query": "q"}], "training_data[99].expected_outcome", "Field required"),
        ([*queries(99), {"query": "", "expected_outcome": {}}], "training_data[99].query", None),
        ([*queries(99), "just a string"], "training_data[99]", None),
    ],
)
async def test_bad_training_data_is_40002(api: Api, data: list[Any], field: str, rule: str | None) -> None:
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "training_data": data})
    assert error["code"] == errors.VALIDATION_FAILED
    assert error["data"]["field"] == field
    if rule:
        assert error["data"]["error"] == rule


async def test_bad_evaluation_data_is_40002(api: Api) -> None:
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "evaluation_data": [{"query": "q"}]})
    assert error["code"] == errors.VALIDATION_FAILED
    assert error["data"]["field"] == "evaluation_data[0].expected_outcome"


async def test_many_errors_are_listed_but_bounded(api: Api) -> None:
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "training_data": [{}] * 150})
    assert error["code"] == errors.VALIDATION_FAILED
    assert len(error["data"]["errors"]) == errors.MAX_REPORTED_ERRORS


async def test_budget_that_cannot_cover_one_iteration(api: Api) -> None:
    # 16 queries x 8 trajectories at the trainer's prior of $0.000625 per trajectory = $0.08.
    config = {"batch_size": 16, "n_trajectories_per_query": 8, "max_budget_usd": "0.07"}
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "config": config})
    assert error["code"] == errors.BUDGET_EXCEEDED
    assert error["data"] == {
        "field": "max_budget_usd",
        "budget_usd": "0.07",
        "estimated_iteration_cost_usd": "0.08",
    }
    await api.result("training.start_grpo", {**SPEC_EXAMPLE, "config": {**config, "max_budget_usd": "0.08"}})


async def test_namespaces_follow_the_token(api: Api) -> None:
    both = token(namespaces=("team-b", "team-a"))
    assert (await api.start(tok=both))["namespace"] == "team-b"  # the token's first namespace
    assert (await api.start(tok=both, namespace="team-a"))["namespace"] == "team-a"
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "namespace": "default"}, tok=both)
    assert error["code"] == errors.FORBIDDEN and error["data"]["field"] == "namespace"
    everywhere = token(namespaces=("*",))
    assert (await api.start(tok=everywhere))["namespace"] == "default"  # the server's default
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "namespace": "team-z"}, tok=everywhere)
    assert error["code"] == errors.INVALID_PARAMS
    assert error["data"] == {"field": "namespace", "error": "namespace 'team-z' does not exist"}


@pytest.mark.parametrize("settings", [make_settings(inline_data_max_bytes=4096)])
async def test_large_data_goes_to_the_object_store(api: Api) -> None:
    data = queries(100, size=50)
    result = await api.result(
        "training.start_grpo", {**SPEC_EXAMPLE, "training_data": data, "evaluation_data": queries(2)}
    )
    spec = api.kube.find(result["job_id"])["spec"]
    key = f"datasets/team-a/{result['name']}/training.json"
    assert spec["trainingData"] == {"uri": f"file://{api.store.root.resolve() / key}"}
    assert json.loads(api.store.get_bytes(key)) == data  # snake_case TrainingQuery objects
    assert "inline" in spec["evaluationData"]  # small enough to stay in the resource


@pytest.mark.parametrize("settings", [make_settings(inline_data_max_bytes=4096)])
async def test_failed_create_removes_the_uploaded_data(api: Api) -> None:
    api.kube.fail["create"] = ApiError(500, {"message": "boom"})
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "training_data": queries(100, size=50)})
    assert error["code"] == errors.INTERNAL_ERROR
    assert api.store.list("datasets/") == []


async def test_apiserver_refusals(api: Api) -> None:
    api.kube.fail["create"] = ApiError(422, {"reason": "Invalid", "message": "spec.config: Invalid value"})
    error = await api.error("training.start_grpo", SPEC_EXAMPLE)
    assert error["code"] == errors.INVALID_PARAMS and "spec.config" in error["data"]["error"]
    api.kube.fail["create"] = ApiError(409, {"reason": "AlreadyExists"})
    assert (await api.error("training.start_grpo", SPEC_EXAMPLE))["code"] == errors.INTERNAL_ERROR


async def test_without_an_object_store_large_data_is_refused(api: Api) -> None:
    cache = JobCache(api.kube)
    service = TrainingService(
        api.kube, cache, api.repo, store=None, options=TrainingOptions(inline_data_max_bytes=100)
    )
    params = StartGrpoParams.model_validate(SPEC_EXAMPLE)
    with pytest.raises(errors.RpcError) as info:
        await service.start_grpo(CallContext(ANONYMOUS, "r1"), params)
    assert info.value.code == errors.VALIDATION_FAILED
    assert info.value.data is not None and "no object store" in info.value.data["error"]


async def test_a_webhook_without_secret_ref_is_refused(api: Api) -> None:
    """Red team (issue 12): a webhook without secret_ref was accepted and delivered unsigned."""
    hook = {"url": "https://hooks.example.com/x", "events": ["training.job.completed"]}
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "webhooks": [hook]})
    assert error["code"] == errors.INVALID_PARAMS
    assert "secret_ref" in error["data"]["field"]


async def test_config_workers_become_spec_workers(api: Api) -> None:
    result = await api.result(
        "training.start_grpo", {"agent_id": "a", "config": {"workers": 4}, "training_data": queries(100)}
    )
    spec = api.kube.find(result["job_id"])["spec"]
    assert spec["workers"] == 4 and "workers" not in spec["config"]


@pytest.mark.parametrize("workers", [0, 65])
async def test_workers_out_of_range_name_the_field(api: Api, workers: int) -> None:
    error = await api.error(
        "training.start_grpo", {**SPEC_EXAMPLE, "config": {**SPEC_EXAMPLE["config"], "workers": workers}}
    )
    assert error["code"] == errors.INVALID_REQUEST
    assert error["data"]["field"] == "workers"


async def test_config_resources_become_spec_resources(api: Api) -> None:
    resources = {"requests": {"cpu": "500m"}, "limits": {"cpu": 2, "nvidia.com/gpu": 1}}
    result = await api.result(
        "training.start_grpo",
        {"agent_id": "a", "config": {"workers": 2, "resources": resources}, "training_data": queries(100)},
    )
    spec = api.kube.find(result["job_id"])["spec"]
    assert spec["resources"] == resources and "resources" not in spec["config"]


async def test_bad_resources_name_the_field(api: Api) -> None:
    config = {**SPEC_EXAMPLE["config"], "resources": {"limits": {"cpu": "2 cores"}}}
    error = await api.error("training.start_grpo", {**SPEC_EXAMPLE, "config": config})
    assert error["code"] == errors.INVALID_REQUEST
    assert error["data"]["field"].startswith("resources.limits.cpu")


async def test_any_agent_id_gets_a_name_valid_for_distributed_jobs(api: Api) -> None:
    result = await api.result(
        "training.start_grpo",
        {"agent_id": "1" * 63, "config": {"workers": 2}, "training_data": queries(100)},
    )
    name = api.kube.find(result["job_id"])["metadata"]["name"]
    assert name.startswith("job-1") and len(name) <= 52
