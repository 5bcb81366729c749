"""Data-source reads are confined to the tenant's prefix (or an allow-list) and bounded in size,
so a TrainingJob cannot make the operator read /dev/zero or another tenant's data."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from agentcore import datasources
from agentcore.api.labels import USABLE_BY_TRAININGJOBS
from agentcore.datasources import DataPolicy, DataSourceError, count_queries, load_queries
from agentcore_trainer.datasets import generate

NO_KUBE = None  # URI sources never touch the Kubernetes API


def store(tmp_path: Path) -> tuple[DataPolicy, Path]:
    root = tmp_path / "objects"
    tenant = root / "datasets" / "tenant-a" / "job"
    tenant.mkdir(parents=True)
    (tenant / "training.json").write_text(json.dumps(generate(100, seed=1)))
    return DataPolicy(store=f"file://{root}", max_bytes=1 << 20), root


async def load(uri: str, namespace: str, policy: DataPolicy) -> list:
    return await load_queries({"uri": uri}, namespace, NO_KUBE, policy=policy)  # type: ignore[arg-type]


async def test_the_tenant_reads_its_own_prefix(tmp_path) -> None:
    policy, root = store(tmp_path)
    queries = await load(f"file://{root}/datasets/tenant-a/job/training.json", "tenant-a", policy)
    assert len(queries) == 100


@pytest.mark.parametrize(
    "uri",
    [
        "file:///dev/zero",
        "file:///etc/passwd",
        "s3://someone-elses-bucket/data.json",
        "file://{root}/datasets/tenant-b/job/training.json",  # another tenant's prefix
        "file://{root}/datasets/tenant-a/../tenant-b/job/training.json",  # traversal
        "file://{root}/datasets/tenant-a-evil/training.json",  # a sibling sharing the prefix text
    ],
)
async def test_anything_else_is_refused_naming_the_uri(tmp_path, uri: str) -> None:
    policy, root = store(tmp_path)
    with pytest.raises(DataSourceError, match="is not allowed"):
        await load(uri.format(root=root), "tenant-a", policy)


async def test_a_symlink_out_of_the_prefix_is_refused(tmp_path) -> None:
    policy, root = store(tmp_path)
    (root / "datasets" / "tenant-a" / "link.json").symlink_to("/etc/passwd")
    with pytest.raises(DataSourceError, match="is not allowed"):
        await load(f"file://{root}/datasets/tenant-a/link.json", "tenant-a", policy)


async def test_a_device_is_not_read_even_where_allowed(tmp_path) -> None:
    policy = DataPolicy(store="", allowed_uris=("file:///dev/",))
    with pytest.raises(DataSourceError, match="not a regular file"):
        await load("file:///dev/zero", "tenant-a", policy)


async def test_reads_are_bounded_in_size(tmp_path) -> None:
    policy, root = store(tmp_path)
    small = policy.model_copy(update={"max_bytes": 1000})
    with pytest.raises(DataSourceError, match="larger than the limit of 1000 bytes"):
        await load(f"file://{root}/datasets/tenant-a/job/training.json", "tenant-a", small)


def test_the_policy_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("AGENTCORE_OBJECT_STORE", "s3://platform/agentcore")
    monkeypatch.setenv("AGENTCORE_DATA_ALLOWED_URIS", "s3://shared/public/, s3://more/")
    monkeypatch.setenv("AGENTCORE_DATA_MAX_BYTES", "123")
    policy = DataPolicy()
    assert policy.tenant_prefix("ns") == "s3://platform/agentcore/datasets/ns/"
    assert policy.allowed_uris == ("s3://shared/public/", "s3://more/") and policy.max_bytes == 123
    policy.check("s3://shared/public/q.json", "ns")
    policy.check("s3://platform/agentcore/datasets/ns/job/training.json", "ns")


class SecretKube:
    """A Kubernetes API holding one Secret with a key of queries."""

    def __init__(self, labels: dict[str, str]) -> None:
        data = base64.b64encode(json.dumps(generate(100, seed=2)).encode()).decode()
        self.secret = {"metadata": {"name": "held-out", "labels": labels}, "data": {"q.json": data}}

    async def get(self, res: object, name: str, namespace: str | None = None) -> dict:
        return self.secret


async def test_a_secret_must_be_labelled_for_trainingjobs() -> None:
    """Red team (issue 12): any Secret of the namespace could be named as a data source."""
    ref = {"secretKeyRef": {"name": "held-out", "key": "q.json"}}
    with pytest.raises(DataSourceError) as info:
        await load_queries(ref, "tenant-a", SecretKube({}))  # type: ignore[arg-type]
    assert "held-out" in str(info.value) and USABLE_BY_TRAININGJOBS in str(info.value)
    labelled = SecretKube({USABLE_BY_TRAININGJOBS: "true"})
    assert len(await load_queries(ref, "tenant-a", labelled)) == 100  # type: ignore[arg-type]


async def test_count_queries_reads_every_time_but_validates_a_text_once(tmp_path, monkeypatch) -> None:
    """The operator validates each job's data; many jobs share one text (bench/operator_scale.py)."""
    policy, root = store(tmp_path)
    uri = f"file://{root}/datasets/tenant-a/job/training.json"
    calls: list[int] = []
    real = datasources.validate_queries
    monkeypatch.setattr(datasources, "validate_queries", lambda raw: calls.append(1) or real(raw))
    counts = [await count_queries({"uri": uri}, "tenant-a", NO_KUBE, policy=policy) for _ in range(3)]  # type: ignore[arg-type]
    assert counts == [100, 100, 100] and len(calls) == 1
    (root / "datasets" / "tenant-a" / "job" / "training.json").write_text(json.dumps([{"query": ""}]))
    for _ in range(2):  # a changed text is read and validated again; its error is remembered too
        with pytest.raises(DataSourceError, match=r"query \[0\]"):
            await count_queries({"uri": uri}, "tenant-a", NO_KUBE, policy=policy)  # type: ignore[arg-type]
    assert len(calls) == 2
