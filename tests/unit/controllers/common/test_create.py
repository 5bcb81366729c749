"""Children are created idempotently, but a 409 adopts only an object this owner already owns."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentcore.controllers.common import manifests
from agentcore.controllers.common.create import ChildConflict, create_or_get
from agentcore.kube.client import JOBS, ApiError, Resource


class OneObjectKube:
    def __init__(self, existing: dict | None) -> None:
        self.existing = existing

    async def create(self, res: Resource, body: dict, namespace: str | None = None, **_: Any) -> dict:
        if self.existing is not None:
            raise ApiError(409, {"message": "exists"})
        self.existing = copy.deepcopy(body)
        return body

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        assert self.existing is not None
        return copy.deepcopy(self.existing)


def job(uid: str, name: str = "tj-trainer") -> dict:
    owner = {"apiVersion": "training.agentcore.io/v1alpha1", "kind": "TrainingJob", "name": "tj", "uid": uid}
    return {"metadata": {"name": name, "ownerReferences": [{**owner, "controller": True}]}}


async def test_a_409_adopts_an_object_of_the_same_owner() -> None:
    kube = OneObjectKube(job("uid-1"))
    got = await create_or_get(kube, JOBS, job("uid-1"), "ns")  # type: ignore[arg-type]
    assert got["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


@pytest.mark.parametrize("existing", [job("uid-other"), {"metadata": {"name": "tj-trainer"}}])
async def test_a_409_on_someone_elses_object_is_a_conflict(existing: dict) -> None:
    """Red team (issue 12): a 409 adopted whatever held the name (another job's, or a planted one)."""
    with pytest.raises(ChildConflict) as info:
        await create_or_get(OneObjectKube(existing), JOBS, job("uid-1"), "ns")  # type: ignore[arg-type]
    assert "tj-trainer" in str(info.value) and "not owned" in str(info.value)


def test_long_names_stay_unique_and_within_63_characters() -> None:
    """Red team (issue 12): names were cut at 63 characters, so two long names shared one Job."""
    common = "a" * 63
    first, second = (
        manifests.bounded_name(common + "-one", "-trainer"),
        manifests.bounded_name(common + "-two", "-trainer"),
    )
    assert first != second and len(first) <= 63 and len(second) <= 63
    assert first.endswith("-trainer") and second.endswith("-trainer")
    assert manifests.bounded_name("short", "-trainer") == "short-trainer"  # unchanged when it fits
    assert manifests.bounded_name(common + "-one") == manifests.bounded_name(common + "-one")  # stable
    assert len(manifests.bounded_name("b" * 200)) == 63
