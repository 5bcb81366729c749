"""The API models against the contract of docs/spec/training-api-reference.md and docs/spec/exports-api.md."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from agentcore.api import (
    FORMATS,
    Condition,
    ConditionStatus,
    DataSource,
    DateRange,
    ExportConfig,
    ExportFormat,
    ExportJob,
    ExportJobStatus,
    ExportPhase,
    GRPOConfig,
    LossType,
    PrivacyLevel,
    ScaleRewards,
    TrainingDataSource,
    TrainingJob,
    TrainingJobStatus,
    TrainingPhase,
    TrainingQuery,
    find_condition,
    set_condition,
)
from agentcore.api.training import Webhook

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _query(i: int = 0) -> dict[str, Any]:
    return {"query": f"task {i}", "expected_outcome": {"answer": str(i)}}


def _error_fields(exc: ValidationError) -> set[str]:
    return {str(part) for error in exc.errors() for part in error["loc"]}


# --- GRPOConfig ----------------------------------------------------------------------------------


def test_grpo_config_defaults_match_the_spec() -> None:
    config = GRPOConfig()
    assert config.n_iterations == 1000
    assert config.batch_size == 16
    assert config.n_trajectories_per_query == 8
    assert config.learning_rate is None  # the spec's 0.0001 is accepted; unset = the backend's default
    assert config.max_budget_usd == Decimal("100.00")
    assert config.checkpoint_interval == 10
    assert config.max_steps_per_trajectory == 20
    assert config.gamma == 0.99


def test_grpo_algorithm_defaults() -> None:
    config = GRPOConfig()
    assert (config.epsilon_low, config.epsilon_high, config.beta) == (0.2, 0.2, 0.04)
    assert config.num_inner_iterations == 1
    assert config.scale_rewards is ScaleRewards.GROUP
    assert config.loss_type is LossType.DAPO
    assert config.max_grad_norm == 1.0
    assert (config.evaluation_interval, config.checkpoint_retention) == (10, 5)
    assert config.seed is None
    assert config.reward_functions is None


# field, values at the bounds (accepted), values just outside (rejected)
RANGES: list[tuple[str, list[Any], list[Any]]] = [
    ("n_iterations", [1, 10000], [0, 10001]),
    ("batch_size", [1, 128], [0, 129]),
    ("n_trajectories_per_query", [1, 16], [0, 17]),
    ("learning_rate", [0.0, 1.0], [-0.001, 1.5]),
    ("max_budget_usd", [0, "0.00", 1_000_000], [-1, "-0.01"]),
    ("checkpoint_interval", [1, 10_000], [0, -5]),
    ("max_steps_per_trajectory", [1, 100], [0, 101]),
    ("gamma", [0.0, 1.0], [-0.1, 1.01]),
    ("epsilon_low", [0.0, 0.999], [-0.1, 1.0]),
    ("epsilon_high", [0.0, 10.0], [-0.1, 10.5]),
    ("beta", [0.0, 5.0], [-0.01]),
    ("num_inner_iterations", [1, 16], [0, 17]),
    ("max_grad_norm", [1e-6, 100.0], [0.0, -1.0]),
    ("evaluation_interval", [1], [0]),
    ("checkpoint_retention", [1, 100], [0, 101]),
    ("seed", [0, 2**40], [-1]),
]


@pytest.mark.parametrize(("field", "accepted", "rejected"), RANGES, ids=[r[0] for r in RANGES])
def test_grpo_config_ranges(field: str, accepted: list[Any], rejected: list[Any]) -> None:
    for value in accepted:
        GRPOConfig.model_validate({field: value})
    for value in rejected:
        with pytest.raises(ValidationError) as info:
            GRPOConfig.model_validate({field: value})
        assert field in _error_fields(info.value), f"{field}={value!r}: {info.value}"
        assert field in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_iterations", "ten"), ("scale_rewards", "mean"), ("loss_type", "ppo"), ("max_budget_usd", "lots")],
)
def test_grpo_config_rejects_wrong_types(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        GRPOConfig.model_validate({field: value})
    assert field in _error_fields(info.value)


def test_camel_case_errors_name_the_camel_case_field() -> None:
    with pytest.raises(ValidationError) as info:
        GRPOConfig.model_validate({"nIterations": 0})
    assert "nIterations" in _error_fields(info.value)


def test_snake_and_camel_case_are_both_accepted() -> None:
    snake = GRPOConfig.model_validate({"n_iterations": 20, "max_budget_usd": "5.00", "loss_type": "grpo"})
    camel = GRPOConfig.model_validate({"nIterations": 20, "maxBudgetUsd": "5.00", "lossType": "grpo"})
    assert snake == camel
    assert camel.to_resource()["nIterations"] == 20
    assert camel.to_api()["n_iterations"] == 20


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        GRPOConfig.model_validate({"n_iteration": 5})
    assert "n_iteration" in _error_fields(info.value)


# --- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50, "50.00"),
        (50.5, "50.50"),
        (50.1, "50.10"),
        ("12.5", "12.50"),
        ("0.125", "0.125"),
        (Decimal("1E+2"), "100.00"),
        ("-0", "0.00"),
        (1e-05, "0.00001"),
    ],
)
def test_money_is_a_decimal_string_in_json(value: Any, expected: str) -> None:
    config = GRPOConfig(max_budget_usd=value)
    assert isinstance(config.max_budget_usd, Decimal)
    assert config.to_resource()["maxBudgetUsd"] == expected
    assert config.to_api()["max_budget_usd"] == expected
    assert json.loads(config.model_dump_json())["max_budget_usd"] == expected


def test_money_default_serialises_as_100_00() -> None:
    assert GRPOConfig().to_resource()["maxBudgetUsd"] == "100.00"


@pytest.mark.parametrize("value", [True, "1e3", "abc", "", float("nan"), float("inf"), [1]])
def test_money_rejects_non_amounts(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        GRPOConfig(max_budget_usd=value)
    assert "max_budget_usd" in _error_fields(info.value)


def test_status_money_round_trips() -> None:
    status = TrainingJobStatus.model_validate({"costUsd": "12.50", "budgetUsd": 50})
    assert status.cost_usd == Decimal("12.50")
    assert status.to_resource() == {"costUsd": "12.50", "budgetUsd": "50.00"}
    assert status.to_api() == {"cost_usd": "12.50", "budget_usd": "50.00"}


# --- training data -------------------------------------------------------------------------------


def test_training_query_requires_a_non_empty_query() -> None:
    with pytest.raises(ValidationError) as info:
        TrainingQuery.model_validate({"query": "", "expected_outcome": {}})
    assert "query" in _error_fields(info.value)


def test_data_source_needs_exactly_one_source() -> None:
    ref = {"name": "queries", "key": "queries.json"}
    DataSource.model_validate({"configMapKeyRef": ref})
    DataSource.model_validate({"uri": "s3://bucket/queries.json"})
    with pytest.raises(ValidationError, match="exactly one"):
        DataSource.model_validate({})
    with pytest.raises(ValidationError, match="exactly one"):
        DataSource.model_validate({"configMapKeyRef": ref, "uri": "file:///data/q.json"})


def test_training_data_inline_needs_100_queries() -> None:
    TrainingDataSource.model_validate({"inline": [_query(i) for i in range(100)]})
    with pytest.raises(ValidationError) as info:
        TrainingDataSource.model_validate({"inline": [_query(i) for i in range(99)]})
    assert "inline" in _error_fields(info.value)
    # Evaluation data has no such minimum.
    DataSource.model_validate({"inline": [_query()]})


@pytest.mark.parametrize("uri", ["http://example.com/q.json", "s3://bucket", "file://relative/path"])
def test_data_source_uri_schemes(uri: str) -> None:
    with pytest.raises(ValidationError) as info:
        DataSource.model_validate({"uri": uri})
    assert "uri" in _error_fields(info.value)


HOOK_KEY = {"name": "hook-key", "key": "key"}


def test_webhook_events_are_the_specs_and_unique() -> None:
    Webhook.model_validate(
        {"url": "https://hooks.example.com/x", "events": ["training.job.completed"], "secretRef": HOOK_KEY}
    )
    for events in (["training.job.done"], [], ["training.job.failed", "training.job.failed"]):
        with pytest.raises(ValidationError) as info:
            Webhook.model_validate(
                {"url": "https://hooks.example.com/x", "events": events, "secretRef": HOOK_KEY}
            )
        assert "events" in _error_fields(info.value)


def test_webhook_without_secret_ref_is_refused() -> None:
    """Red team (issue 12): a webhook without secretRef was delivered unsigned."""
    with pytest.raises(ValidationError) as info:
        Webhook.model_validate({"url": "https://hooks.example.com/x", "events": ["training.job.completed"]})
    assert "secretRef" in _error_fields(info.value)
    # The apiserver refuses it too: kubectl-created TrainingJobs go through the CRD, not the model.
    crd = yaml.safe_load((EXAMPLES.parent / "crds" / "trainingjobs.training.agentcore.io.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "secretRef" in spec["properties"]["webhooks"]["items"]["required"]


# --- phases and conditions -----------------------------------------------------------------------


def test_phases_map_to_the_api_lower_case_values() -> None:
    assert [p.api_value for p in TrainingPhase] == ["queued", "running", "completed", "failed", "cancelled"]
    assert TrainingPhase.from_api_value("running") is TrainingPhase.RUNNING
    assert ExportPhase.from_api_value("pending") is ExportPhase.PENDING
    assert {p for p in TrainingPhase if p.is_terminal} == {
        TrainingPhase.COMPLETED,
        TrainingPhase.FAILED,
        TrainingPhase.CANCELLED,
    }


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    t0 = datetime(2025, 10, 17, 10, 0, 0, 123456, tzinfo=UTC)
    t1 = t0 + timedelta(minutes=5)
    conditions = set_condition([], "Running", "True", "TrainerStarted", "pod started", 1, t0)
    assert conditions[0].last_transition_time == t0.replace(microsecond=0)

    same = set_condition(conditions, "Running", ConditionStatus.TRUE, "Progressing", "iteration 5", 2, t1)
    assert same[0].last_transition_time == t0.replace(microsecond=0)
    assert (same[0].reason, same[0].message, same[0].observed_generation) == ("Progressing", "iteration 5", 2)

    flipped = set_condition(same, "Running", "False", "Completed", "done", 2, t1)
    assert flipped[0].last_transition_time == t1.replace(microsecond=0)
    assert conditions[0].reason == "TrainerStarted", "the input list must not be modified"


def test_set_condition_keeps_other_conditions_in_order() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    conditions = set_condition([], "Running", "True", "Started", "", 1, now)
    conditions = set_condition(conditions, "BudgetExceeded", "False", "WithinBudget", "", 1, now)
    conditions = set_condition(conditions, "Running", "False", "Stopped", "", 1, now)
    assert [c.type for c in conditions] == ["Running", "BudgetExceeded"]
    found = find_condition(conditions, "BudgetExceeded")
    assert found is not None and found.status is ConditionStatus.FALSE
    assert find_condition(conditions, "Missing") is None


def test_set_condition_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        set_condition([], "Running", "True", "Started", "", 1, datetime(2025, 1, 1))


def test_condition_serialises_like_metav1() -> None:
    now = datetime(2025, 10, 17, 10, 30, tzinfo=UTC)
    condition = Condition(
        type="Succeeded", status=ConditionStatus.TRUE, reason="Done", last_transition_time=now
    )
    assert condition.to_resource() == {
        "type": "Succeeded",
        "status": "True",
        "reason": "Done",
        "message": "",
        "lastTransitionTime": "2025-10-17T10:30:00Z",
    }
    with pytest.raises(ValidationError) as info:
        Condition(type="X", status=ConditionStatus.TRUE, reason="not a reason", last_transition_time=now)
    assert "reason" in _error_fields(info.value)


# --- exports -------------------------------------------------------------------------------------


def test_formats_table_matches_the_spec() -> None:
    rows = [info.to_api() for info in FORMATS.values()]
    assert [r["id"] for r in rows] == ["json", "csv", "parquet", "excel", "pdf"]
    assert rows[3] == {
        "id": "excel",
        "name": "Microsoft Excel",
        "extension": ".xlsx",
        "content_type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "max_size_mb": 50,
    }
    assert {r["id"]: r["max_size_mb"] for r in rows} == {
        "json": 100,
        "csv": 500,
        "parquet": 1000,
        "excel": 50,
        "pdf": 25,
    }
    assert set(FORMATS) == set(ExportFormat)


def test_export_config_defaults_and_enums() -> None:
    config = ExportConfig.model_validate({"format": "csv"})
    assert config.privacy_level is PrivacyLevel.ANONYMIZED
    assert config.redaction_rule == "pii-standard"
    assert config.k_anonymity == 5
    for field, value in (("format", "docx"), ("privacy_level", "secret"), ("k_anonymity", 1)):
        with pytest.raises(ValidationError) as info:
            ExportConfig.model_validate({"format": "csv", field: value})
        assert field in _error_fields(info.value)


@pytest.mark.parametrize("k", [2, 4])
def test_k_anonymity_is_at_least_5(k: int) -> None:
    """Red team (issue 12): k could be 2, so an aggregated row could describe two agents."""
    with pytest.raises(ValidationError) as info:
        ExportConfig.model_validate({"format": "csv", "privacy_level": "aggregated", "k_anonymity": k})
    assert "k_anonymity" in _error_fields(info.value)
    assert ExportConfig.model_validate({"format": "csv", "k_anonymity": 5}).k_anonymity == 5


def test_export_filters_min_confidence_range() -> None:
    ExportConfig.model_validate({"format": "csv", "filters": {"min_confidence": 1.0}})
    with pytest.raises(ValidationError) as info:
        ExportConfig.model_validate({"format": "csv", "filters": {"minConfidence": 1.5}})
    assert "minConfidence" in _error_fields(info.value)


def test_date_range_start_not_after_end() -> None:
    DateRange.model_validate({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"})
    with pytest.raises(ValidationError, match="start must not be after"):
        DateRange.model_validate({"start": "2026-01-09T00:00:00Z", "end": "2026-01-01T00:00:00Z"})
    with pytest.raises(ValidationError):  # naive timestamps are ambiguous
        DateRange.model_validate({"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"})


# --- whole resources -----------------------------------------------------------------------------


def _example_docs(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text()) if doc]


def test_example_trainingjob_validates() -> None:
    docs = {doc["kind"]: doc for doc in _example_docs("trainingjob.yaml")}
    job = TrainingJob.model_validate(docs["TrainingJob"])
    assert job.spec.config.n_iterations == 40
    assert job.spec.config.max_budget_usd == Decimal("5.00")
    ref = job.spec.training_data.config_map_key_ref
    assert ref is not None and ref.name == docs["ConfigMap"]["metadata"]["name"]
    queries = json.loads(docs["ConfigMap"]["data"][ref.key])
    parsed = [TrainingQuery.model_validate(q) for q in queries]
    assert len(parsed) >= 120
    assert len({q.query for q in parsed}) == len(parsed), "queries must not repeat"
    allowed = {"answer", "tool_sequence", "test_passed", "execution_time_ms", "tests"}
    assert all(set(q.expected_outcome) <= allowed for q in parsed)
    evaluation = job.spec.evaluation_data
    assert evaluation is not None and evaluation.inline
    assert not {q.query for q in evaluation.inline} & {q.query for q in parsed}, "held-out means disjoint"


def test_example_exportjob_validates() -> None:
    (doc,) = _example_docs("exportjob.yaml")
    job = ExportJob.model_validate(doc)
    assert job.spec.config.format is ExportFormat.CSV
    assert job.spec.config.privacy_level is PrivacyLevel.ANONYMIZED


def test_resources_round_trip_through_camel_case() -> None:
    (doc,) = _example_docs("exportjob.yaml")
    assert ExportJob.model_validate(doc).to_resource()["spec"]["exportType"] == doc["spec"]["exportType"]
    status = {
        "phase": "Running",
        "jobId": "550e8400-e29b-41d4-a716-446655440000",
        "currentIteration": 150,
        "totalIterations": 500,
        "progressPercent": 30.0,
        "metrics": {"trainLoss": 0.234, "avgReward": 0.65, "trajectoriesGenerated": 1200},
        "costUsd": "12.50",
        "startedAt": "2025-10-17T10:30:05Z",
    }
    parsed = TrainingJobStatus.model_validate(status)
    assert parsed.to_resource() == status
    assert parsed.to_api()["metrics"] == {
        "train_loss": 0.234,
        "avg_reward": 0.65,
        "trajectories_generated": 1200,
    }


@pytest.mark.parametrize("model", [TrainingJobStatus, ExportJobStatus])
def test_status_has_no_defaults(model: type[BaseModel]) -> None:
    # The apiserver would otherwise write defaults into status the trainer never set.
    assert model().model_dump(exclude_none=True) == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [("progressPercent", 101.0), ("budgetRemainingPercent", -1.0), ("budgetWarnings", [0])],
)
def test_status_ranges(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        TrainingJobStatus.model_validate({field: value})
    assert field in _error_fields(info.value)


def test_baseline_comparison_is_the_sdk_model_with_resource_aliases() -> None:
    from agentcore.api.training import BaselineComparison
    from agentcore_sdk import models as sdk_models

    assert issubclass(BaselineComparison, sdk_models.BaselineComparison)
    assert BaselineComparison.model_fields.keys() == sdk_models.BaselineComparison.model_fields.keys()
    resource = BaselineComparison.model_validate({"pValue": 0.01, "statisticallySignificant": True})
    assert resource.to_resource() == {"pValue": 0.01, "statisticallySignificant": True}
    with pytest.raises(ValidationError):
        BaselineComparison.model_validate({"pValue": 0.01, "unknown": 1})  # a resource refuses extras
    assert sdk_models.BaselineComparison.model_validate({"unknown": 1}).model_extra == {"unknown": 1}


def test_jobs_are_matched_to_their_owner_by_controller_reference_not_label():
    from agentcore.api.batchjob import jobs_by_owner

    long_name = "e" * 200  # a name no label value can hold

    def job(name: str, owner: str, uid: str, kind: str = "ExportJob") -> dict:
        ref = {"apiVersion": "v1", "kind": kind, "name": owner, "uid": uid, "controller": True}
        return {"metadata": {"name": name, "labels": {"l": owner[:63]}, "ownerReferences": [ref]}}

    items = [
        job("a-export", long_name, "u1"),
        job("planted", "b", "not-b"),  # names b as its owner, but b is another object
        job("other-kind", "c", "u3", kind="TrainingJob"),
        {"metadata": {"name": "orphan", "labels": {"l": "b"}}},
    ]
    found = jobs_by_owner(items, "ExportJob", {long_name: "u1", "b": "u2", "c": "u3"})
    assert {owner: j.name for owner, j in found.items()} == {long_name: "a-export"}


def test_workers_default_to_one_and_are_bounded():
    from pydantic import ValidationError

    from agentcore.api.training import MAX_WORKERS, TrainingJobSpec

    base = {"agentId": "a", "config": {}, "trainingData": {"uri": "s3://b/k.json"}}
    assert TrainingJobSpec.model_validate(base).workers == 1
    wide = {**base, "config": {"batchSize": 128}, "workers": MAX_WORKERS}
    assert TrainingJobSpec.model_validate(wide).workers == MAX_WORKERS
    with pytest.raises(ValidationError, match=r"workers must not exceed config\.batchSize"):
        TrainingJobSpec.model_validate({**base, "config": {"batchSize": 2}, "workers": 3})
    for bad in (0, MAX_WORKERS + 1):
        with pytest.raises(ValidationError, match="workers"):
            TrainingJobSpec.model_validate({**base, "workers": bad})
