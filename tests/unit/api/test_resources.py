"""Per-worker compute resources (spec.resources / JSON-RPC config.resources) and quantities."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from agentcore.api.resources import ResourceRequirements, parse_quantity
from agentcore.api.training import TrainingJob, distributed_name_problem
from agentcore.controllers.trainingjob import children


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", Decimal(2)),
        (2, Decimal(2)),
        ("500m", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("4Gi", Decimal(4 * 1024**3)),
        ("128Mi", Decimal(128 * 1024**2)),
        ("1e3", Decimal(1000)),
        ("2k", Decimal(2000)),
        ("+1", Decimal(1)),
    ],
)
def test_quantities_parse_like_kubernetes(text: Any, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "2 cores", "-1", "1GB", "Gi", "1.2.3", "0x10", "1e"])
def test_non_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


def test_requirements_keep_gpus_and_dump_as_the_apiserver_expects() -> None:
    req = ResourceRequirements.model_validate(
        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 2, "nvidia.com/gpu": 1}}
    )
    assert req.manifest() == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": 2, "nvidia.com/gpu": 1},
    }


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"limit": {"cpu": "1"}}, "limit", "Extra inputs"),
        ({"limits": {"cpu": "2 cores"}}, "limits.cpu", "pattern"),
        ({"limits": {"cpu": -1}}, "limits.cpu", "greater than or equal to 0"),
        ({"limits": {"bad name!": 1}}, "limits", "not a resource name"),
        ({"requests": {"cpu": "3"}, "limits": {"cpu": "2500m"}}, "", "requests.cpu (3) must be less"),
        ({"limits": {f"r{i}": 1 for i in range(17)}}, "limits", "at most 16"),
    ],
)
def test_bad_requirements_name_the_field_and_rule(body: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        ResourceRequirements.model_validate(body)
    text = str(info.value)
    assert rule in text, text
    branches = ("int", "str")  # pydantic's union branch markers in error locations
    locations = {
        ".".join(str(p) for p in e["loc"] if not str(p).startswith(branches)) for e in info.value.errors()
    }
    assert any(loc.startswith(field) for loc in locations), locations


def _tj(name: str, workers: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {
            "agentId": "a",
            "workers": workers,
            "config": {"batchSize": 8},
            "trainingData": {"configMapKeyRef": {"name": "d", "key": "q.json"}},
        },
    }


@pytest.mark.parametrize("name", ["a.b", "1abc", "x" * 53, "Upper"])
def test_distributed_jobs_need_dns_1035_names_that_leave_room_for_the_index(name: str) -> None:
    assert distributed_name_problem(name, 1) is None  # one worker: any resource name
    TrainingJob.model_validate(_tj(name, 1))
    with pytest.raises(ValidationError, match=r"metadata\.name must be a DNS-1035 label"):
        TrainingJob.model_validate(_tj(name, 2))


def test_a_52_character_distributed_name_fits_every_hostname() -> None:
    tj = TrainingJob.model_validate(_tj("a" * 52, 8))
    assert len(f"{children.child_name(tj)}-63") == 63  # the Job's name is not cut or hashed
