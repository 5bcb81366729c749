"""The SDK's Exports methods (sync and async) against the real Exports routes in-process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentcore_sdk import AsyncTrainingClient, ExportsApiError, TrainingClient
from agentcore_sdk.models import ExportCreated, ExportJob
from tests.unit.server.rest.test_exports import _completed, _rule_configmap, api

__all__ = ["api"]  # the Exports harness's fixture (it overrides the JSON-RPC one here)

CONFIG = {"format": "csv", "privacy_level": "anonymized"}


def sync_client(http: Any, who: str = "analyst", **kw: Any) -> TrainingClient:
    return TrainingClient(str(http.make_url("/")), headers={"X-Test-Caller": who}, **kw)


async def test_sync_exports_lifecycle(api: Any) -> None:
    client = sync_client(api)
    created = await asyncio.to_thread(client.create_export, "trajectories", CONFIG, "Weekly Report", "team-a")
    assert isinstance(created, ExportCreated) and created.status == "pending"
    got = await asyncio.to_thread(client.get_export, created.id)
    assert isinstance(got, ExportJob) and got.config["format"] == "csv" and got.position_in_queue == 0

    done = await _completed(api)
    got = await asyncio.to_thread(client.get_export, done)
    assert got.output is not None and got.output.row_count == 4
    assert got.redaction_applied is not None and got.redaction_applied.fields_redacted == ["agent.id"]
    listing = await asyncio.to_thread(client.list_exports, status="completed")
    assert listing.total == 1 and listing.items[0].id == done and listing.items[0].format == "csv"
    link = await asyncio.to_thread(client.download_url, done)
    assert link.download_url.endswith("X-Amz-Expires=3600") and link.file_name == "Weekly_Report.csv"

    cancelled = await asyncio.to_thread(client.cancel_export, created.id, "not needed")
    assert cancelled.status == "cancelled"
    assert await asyncio.to_thread(client.delete_export, done) is None
    with pytest.raises(ExportsApiError) as info:
        await asyncio.to_thread(client.get_export, done)
    assert info.value.http_status == 404 and info.value.error_code == "NOT_FOUND"


async def test_sync_rest_errors_are_typed(api: Any) -> None:
    client = sync_client(api)
    with pytest.raises(ExportsApiError) as info:
        await asyncio.to_thread(client.create_export, "trajectories", {**CONFIG, "format": "docx"})
    assert info.value.error_code == "INVALID_FORMAT" and info.value.extra["requested_format"] == "docx"
    with pytest.raises(ExportsApiError) as info:
        await asyncio.to_thread(client.create_export, "trajectories", {**CONFIG, "privacy_level": "full"})
    assert info.value.http_status == 403 and info.value.extra["required_role"] == "admin"
    with pytest.raises(ExportsApiError) as info:
        await asyncio.to_thread(TrainingClient(str(api.make_url("/"))).export_formats)  # no caller
    assert info.value.http_status == 401 and info.value.error_code == "UNAUTHORIZED"


async def test_rate_limit_surfaces_retry_after(api: Any) -> None:
    client = sync_client(api, max_retries=0)
    for _ in range(10):
        await asyncio.to_thread(client.create_export, "trajectories", CONFIG)
    with pytest.raises(ExportsApiError) as info:
        await asyncio.to_thread(client.create_export, "trajectories", CONFIG)
    assert info.value.http_status == 429 and info.value.retry_after == 6
    bounded = sync_client(api, max_retries=3, max_retry_wait=1)
    with pytest.raises(ExportsApiError):  # 6 s is longer than it may wait: raised, not slept
        await asyncio.to_thread(bounded.create_export, "trajectories", CONFIG)


async def test_async_formats_and_redaction_rules(api: Any) -> None:
    await _rule_configmap(api.kube, "strict", [{"path": "agent.id", "action": "replace", "value": "X"}])
    url = str(api.make_url("/"))
    async with AsyncTrainingClient(url, headers={"X-Test-Caller": "analyst"}) as client:
        formats = await client.export_formats()
        assert [f.id for f in formats.formats] == ["json", "csv", "parquet", "excel", "pdf"]
        rules = await client.redaction_rules()
        assert rules.default_rule == "pii-standard" and [r.id for r in rules.rules][-1] == "strict"
        rule = await client.redaction_rule("strict")
        assert rule.fields[0].path == "agent.id" and rule.fields[0].model_extra == {"value": "X"}
        created = await client.create_export("trajectories", {**CONFIG, "redaction_rule": "strict"})
        assert (await client.get_export(created.id)).status == "pending"
        with pytest.raises(ExportsApiError) as info:
            await client.redaction_rule("nope")
        assert info.value.http_status == 404
