"""The Exports REST API over an in-memory Kubernetes API, SQLite and a fake object store."""

from __future__ import annotations

import asyncio
import builtins
import copy
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agentcore.auth import tokens
from agentcore.auth.tokens import ADMIN_ROLE, ALL_NAMESPACES, EXPORT, VIEW, Principal
from agentcore.exports.rules import RULE_LABEL
from agentcore.exports.settings import ExportSettings
from agentcore.kube.client import ApiError, Resource
from agentcore.server.ratelimit import SPEC_LIMITS, RateLimiter
from agentcore.server.rest import exports as rest
from agentcore.server.rest.exports import ExportDeps, Unauthorized, add_export_routes
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.migrate import upgrade
from agentcore.storage.trajectories import TrajectoryRepository
from tests.conftest import merge_patch
from tests.exports_support import trajectory_rows
from tests.openapi_support import check_response

NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
ADMIN = Principal("root", frozenset(), (ALL_NAMESPACES,), frozenset({ADMIN_ROLE}))
ANALYST = Principal("ann", frozenset({EXPORT}), ("team-a",), frozenset({"analyst"}))
VIEWER = Principal("vic", frozenset({VIEW}), ("team-a",))


def _selected(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        key, eq, value = term.partition("=")
        if (eq and labels.get(key) != value) or (not eq and key not in labels):
            return False
    return True


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.created = 0

    async def list(self, res: Resource, namespace: str | None = None, **params: Any) -> dict:
        items = [
            copy.deepcopy(o)
            for (plural, ns, _), o in sorted(self.objects.items())
            if plural == res.plural and namespace in (None, ns) and _selected(o, params.get("labelSelector"))
        ]
        return {"items": items}

    async def get(
        self, res: Resource, name: str, namespace: str | None = None, sub: str | None = None
    ) -> dict:
        try:
            return copy.deepcopy(self.objects[(res.plural, namespace or "", name)])
        except KeyError:
            raise ApiError(404, {"message": "not found"}) from None

    async def create(self, res: Resource, body: dict, namespace: str | None = None, **_: Any) -> dict:
        key = (res.plural, namespace or "", body["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, {"message": "exists"})
        obj = copy.deepcopy(body)
        self.created += 1
        stamp = f"2026-01-05T11:00:{self.created:02d}Z"
        obj["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=stamp)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    async def patch(
        self, res: Resource, name: str, body: dict, namespace: str | None = None, **_: Any
    ) -> dict:
        key = (res.plural, namespace or "", name)
        if key not in self.objects:
            raise ApiError(404, {"message": "not found"})
        self.objects[key] = merge_patch(self.objects[key], body)
        return copy.deepcopy(self.objects[key])

    async def delete(self, res: Resource, name: str, namespace: str | None = None, **_: Any) -> None:
        if self.objects.pop((res.plural, namespace or "", name), None) is None:
            raise ApiError(404, {"message": "not found"})

    def exportjobs(self) -> builtins.list[dict]:
        return [o for (plural, _, _), o in self.objects.items() if plural == "exportjobs"]


class FakeStore:
    uri = "s3://bucket/agentcore"

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def presign(self, key: str, expires_in: int) -> str:
        return f"https://s3.test/bucket/agentcore/{key}?X-Amz-Expires={expires_in}"

    def delete(self, key: str) -> None:
        self.deleted.append(key)


class CheckedClient(TestClient):
    """Every answer of the suite is checked against the served OpenAPI document."""

    async def _request(self, method: str, path: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        resp = await super()._request(method, path, **kwargs)
        check_response(method, str(path), resp.status, await resp.read())
        return resp


async def _authenticate(request: web.Request) -> Principal:
    raw = request.headers.get("X-Test-Caller")
    if raw is None:
        raise Unauthorized("no caller")
    return {"admin": ADMIN, "analyst": ANALYST, "viewer": VIEWER}[raw]


@pytest.fixture
async def api(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await upgrade(engine)
    await TrajectoryRepository(session_factory(engine)).add_batch(
        trajectory_rows("team-a", str(uuid.uuid4()), "j")
    )
    kube, store = FakeKube(), FakeStore()
    deps = ExportDeps(
        kube=kube,  # type: ignore[arg-type]
        authenticate=_authenticate,
        store=store,  # type: ignore[arg-type]
        engine=engine,
        settings=ExportSettings(),
        # A small clock value: at epoch magnitudes the shared GCRA limiter's 1e-9 tolerance is below
        # float resolution and it refuses the 50th request of a burst (reported upstream).
        limiter=RateLimiter(SPEC_LIMITS, clock=lambda: 1000.0),
        clock=lambda: NOW,
    )
    app = web.Application()
    add_export_routes(app, deps)
    client = CheckedClient(TestServer(app))
    await client.start_server()
    client.kube, client.store = kube, store  # type: ignore[attr-defined]
    yield client
    await client.close()
    await asyncio.gather(*rest._BACKGROUND)  # audit writes still in flight
    await engine.dispose()


def body(fmt: str = "csv", level: str = "anonymized", **extra: Any) -> dict:
    config = {"format": fmt, "privacy_level": level, **extra.pop("config", {})}
    return {
        "project_id": "team-a",
        "name": "Weekly Report",
        "export_type": "trajectories",
        "config": config,
        **extra,
    }


async def create(api, who: str = "analyst", **kwargs: Any):
    return await api.post("/api/v1/exports", json=body(**kwargs), headers={"X-Test-Caller": who})


async def test_create_returns_202_and_an_exportjob(api):
    resp = await create(api)
    assert resp.status == 202
    out = await resp.json()
    assert set(out) == {
        "id",
        "status",
        "export_type",
        "estimated_duration_seconds",
        "position_in_queue",
        "created_at",
    }
    assert (
        out["status"] == "pending" and out["export_type"] == "trajectories" and out["position_in_queue"] == 0
    )
    (ej,) = api.kube.exportjobs()
    assert ej["metadata"]["name"] == f"export-{out['id']}"
    assert ej["metadata"]["labels"]["training.agentcore.io/export-id"] == out["id"]
    assert ej["metadata"]["annotations"]["training.agentcore.io/created-by"] == "ann"
    assert ej["spec"]["config"] == {
        "format": "csv",
        "privacyLevel": "anonymized",
        "includeTelemetry": False,
        "includePersonas": False,
        "includeEvents": False,
        "includeReliability": False,
        "redactionRule": "pii-standard",
        "kAnonymity": 5,
    }
    assert resp.headers["X-RateLimit-Limit"] == "10"


async def test_invalid_format_body_is_the_specs(api):
    resp = await create(api, fmt="docx")
    assert resp.status == 400
    assert await resp.json() == {
        "detail": "Invalid export format",
        "status_code": 400,
        "error_code": "INVALID_FORMAT",
        "requested_format": "docx",
        "available_formats": ["json", "csv", "parquet", "excel", "pdf"],
    }


async def test_full_needs_admin(api):
    resp = await create(api, level="full")
    assert resp.status == 403
    assert await resp.json() == {
        "detail": "Privacy level 'full' requires admin role",
        "status_code": 403,
        "error_code": "PRIVACY_LEVEL_DENIED",
        "your_role": "analyst",
        "required_role": "admin",
    }
    assert (await create(api, who="admin", level="full")).status == 202


async def test_permission_namespace_and_validation_errors(api):
    assert (await create(api, who="viewer")).status == 403
    resp = await api.post(
        "/api/v1/exports", json=body(project_id="team-b"), headers={"X-Test-Caller": "analyst"}
    )
    assert resp.status == 403 and (await resp.json())["error_code"] == "PROJECT_ACCESS_DENIED"
    resp = await api.post(
        "/api/v1/exports", json={**body(), "export_type": "nope"}, headers={"X-Test-Caller": "analyst"}
    )
    out = await resp.json()
    assert (
        resp.status == 400
        and out["error_code"] == "VALIDATION_ERROR"
        and out["errors"][0]["field"] == "export_type"
    )
    resp = await api.post("/api/v1/exports", data="[", headers={"X-Test-Caller": "analyst"})
    assert resp.status == 400
    resp = await api.post("/api/v1/exports", json=body())
    assert resp.status == 401 and (await resp.json())["error_code"] == "UNAUTHORIZED"


async def test_unknown_or_leaky_redaction_rule_is_refused(api):
    resp = await create(api, config={"redaction_rule": "missing"})
    assert resp.status == 400 and (await resp.json())["error_code"] == "INVALID_REDACTION_RULE"
    await _rule_configmap(api.kube, "leaky", [{"path": "agent.id", "action": "hash", "preserve_prefix": 3}])
    resp = await create(api, config={"redaction_rule": "leaky"})
    out = await resp.json()
    assert resp.status == 400 and "preserve_prefix" in out["detail"]


async def test_create_rate_limit(api):
    for _ in range(10):
        assert (await create(api)).status == 202
    resp = await create(api)
    assert resp.status == 429
    out = await resp.json()
    assert out == {
        "detail": "Export rate limit exceeded",
        "status_code": 429,
        "error_code": "RATE_LIMITED",
        "retry_after_seconds": 6,
    }
    assert resp.headers["Retry-After"] == "6"


async def test_too_large_is_refused_with_the_estimate(api, monkeypatch):
    from agentcore.exports import pipeline

    monkeypatch.setattr(pipeline, "max_bytes", lambda fmt: 1000)
    resp = await create(api, fmt="json")
    assert resp.status == 413
    out = await resp.json()
    assert out["error_code"] == "EXPORT_TOO_LARGE" and out["detail"] == "Export would exceed size limit"
    assert out["estimated_size_mb"] >= 1 and out["max_size_mb"] == 1
    assert out["suggestion"].startswith("Apply filters or reduce telemetry resolution")
    assert api.kube.exportjobs() == []


async def test_queue_position_beyond_three(api):
    positions = [(await (await create(api)).json())["position_in_queue"] for _ in range(5)]
    assert positions == [0, 0, 0, 0, 1]  # nothing admitted yet: the first three take the slots


async def _completed(api, expires: str = "2026-01-05T13:00:00Z") -> str:
    export_id = (await (await create(api)).json())["id"]
    (ej,) = [
        o
        for o in api.kube.exportjobs()
        if o["metadata"]["labels"]["training.agentcore.io/export-id"] == export_id
    ]
    ej["status"] = {
        "phase": "Completed",
        "exportId": export_id,
        "output": {
            "fileRef": f"s3://bucket/agentcore/exports/team-a/{export_id}/Weekly_Report.csv",
            "fileName": "Weekly_Report.csv",
            "contentType": "text/csv",
            "fileSizeBytes": 123,
            "rowCount": 4,
            "expiresAt": expires,
        },
        "redactionApplied": {"fieldsRedacted": ["agent.id"], "rowsFiltered": 0},
        "timing": {
            "requestedAt": "2026-01-05T11:00:00Z",
            "completedAt": "2026-01-05T11:00:30Z",
            "durationSeconds": 30,
        },
    }
    return export_id


async def test_get_list_download_cancel_delete(api):
    export_id = await _completed(api)
    other = (await (await create(api, config={"format": "json"})).json())["id"]
    who = {"X-Test-Caller": "analyst"}

    got = await (await api.get(f"/api/v1/exports/{export_id}", headers=who)).json()
    assert got["status"] == "completed" and got["output"] == {
        "file_ref": f"s3://bucket/agentcore/exports/team-a/{export_id}/Weekly_Report.csv",
        "file_size_bytes": 123,
        "row_count": 4,
        "expires_at": "2026-01-05T13:00:00Z",
    }
    assert got["redaction_applied"] == {"fields_redacted": ["agent.id"], "rows_filtered": 0}
    assert got["timing"]["duration_seconds"] == 30 and got["config"]["format"] == "csv"

    listing = await (await api.get("/api/v1/exports?status=completed", headers=who)).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == export_id
    assert (
        listing["items"][0]["format"] == "csv" and listing["items"][0]["expires_at"] == "2026-01-05T13:00:00Z"
    )
    page = await (await api.get("/api/v1/exports?project_id=team-a&limit=1&skip=1", headers=who)).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert (await api.get("/api/v1/exports?limit=0", headers=who)).status == 400
    assert (await api.get("/api/v1/exports?status=done", headers=who)).status == 400

    download = await (await api.get(f"/api/v1/exports/{export_id}/download", headers=who)).json()
    assert download["download_url"].endswith("Weekly_Report.csv?X-Amz-Expires=3600")
    assert download["expires_at"] == "2026-01-05T13:00:00Z"
    assert download["file_name"] == "Weekly_Report.csv" and download["content_type"] == "text/csv"
    resp = await api.get(f"/api/v1/exports/{other}/download", headers=who)
    assert resp.status == 409 and (await resp.json())["error_code"] == "EXPORT_NOT_READY"

    resp = await api.post(f"/api/v1/exports/{other}/cancel", headers=who)
    assert await resp.json() == {
        "id": other,
        "status": "cancelled",
        "message": "Export cancelled successfully",
    }
    cancelled = next(o for o in api.kube.exportjobs() if o["metadata"]["name"] == f"export-{other}")
    assert cancelled["spec"]["cancel"] == {"requested": True, "reason": "cancelled by ann"}
    resp = await api.post(f"/api/v1/exports/{export_id}/cancel", headers=who)
    assert resp.status == 409 and (await resp.json())["error_code"] == "EXPORT_NOT_CANCELLABLE"

    resp = await api.delete(f"/api/v1/exports/{export_id}", headers=who)
    assert resp.status == 204
    assert api.store.deleted == [f"exports/team-a/{export_id}/Weekly_Report.csv"]
    assert (await api.get(f"/api/v1/exports/{export_id}", headers=who)).status == 404


async def test_download_url_never_outlives_the_file(api):
    export_id = await _completed(api, expires="2026-01-05T12:05:00Z")
    download = await (
        await api.get(f"/api/v1/exports/{export_id}/download", headers={"X-Test-Caller": "analyst"})
    ).json()
    assert (
        download["download_url"].endswith("X-Amz-Expires=300")
        and download["expires_at"] == "2026-01-05T12:05:00Z"
    )
    expired = await _completed(api, expires="2026-01-05T11:59:00Z")
    resp = await api.get(f"/api/v1/exports/{expired}/download", headers={"X-Test-Caller": "analyst"})
    assert resp.status == 410 and (await resp.json())["error_code"] == "EXPORT_EXPIRED"


async def test_download_rate_limit(api):
    export_id = await _completed(api)
    for _ in range(50):
        assert (
            await api.get(f"/api/v1/exports/{export_id}/download", headers={"X-Test-Caller": "analyst"})
        ).status == 200
    resp = await api.get(f"/api/v1/exports/{export_id}/download", headers={"X-Test-Caller": "analyst"})
    assert resp.status == 429 and (await resp.json())["error_code"] == "RATE_LIMITED"


async def test_other_tenants_exports_are_invisible(api):
    export_id = (await (await create(api, who="admin", project_id="team-b")).json())["id"]
    assert (await api.get(f"/api/v1/exports/{export_id}", headers={"X-Test-Caller": "analyst"})).status == 404
    assert (await api.get("/api/v1/exports/not-a-uuid", headers={"X-Test-Caller": "analyst"})).status == 404
    listing = await (await api.get("/api/v1/exports", headers={"X-Test-Caller": "analyst"})).json()
    assert listing == {"items": [], "total": 0}


async def test_formats(api):
    out = await (await api.get("/api/v1/exports/formats", headers={"X-Test-Caller": "viewer"})).json()
    assert [f["id"] for f in out["formats"]] == ["json", "csv", "parquet", "excel", "pdf"]
    assert out["formats"][3] == {
        "id": "excel",
        "name": "Microsoft Excel",
        "extension": ".xlsx",
        "content_type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "max_size_mb": 50,
    }


async def _rule_configmap(kube: FakeKube, name: str, fields: list[dict]) -> None:
    rule = {"name": name.title(), "description": "custom", "fields": fields}
    await kube.create(
        Resource("", "v1", "configmaps"),
        {"metadata": {"name": name, "labels": {RULE_LABEL: "true"}}, "data": {"rule.json": json.dumps(rule)}},
        "team-a",
    )


async def test_redaction_rules(api):
    await _rule_configmap(api.kube, "strict", [{"path": "agent.id", "action": "replace", "value": "X"}])
    who = {"X-Test-Caller": "analyst"}
    out = await (await api.get("/api/v1/exports/redaction-rules", headers=who)).json()
    assert out["default_rule"] == "pii-standard"
    assert [(r["id"], r["is_default"]) for r in out["rules"]] == [
        ("pii-standard", True),
        ("full-anonymization", False),
        ("strict", False),
    ]
    detail = await (await api.get("/api/v1/exports/redaction-rules/pii-standard", headers=who)).json()
    assert detail["name"] == "Standard PII Redaction" and detail["fields"][0]["path"] == "agent.id"
    custom = await (await api.get("/api/v1/exports/redaction-rules/strict", headers=who)).json()
    assert custom["fields"] == [{"path": "agent.id", "action": "replace", "value": "X"}]
    assert (await api.get("/api/v1/exports/redaction-rules/nope", headers=who)).status == 404
    assert (await create(api, config={"redaction_rule": "strict"})).status == 202


async def test_local_store_downloads_through_a_server_signed_url(api, tmp_path):
    from agentcore.storage.objectstore import LocalObjectStore

    store = LocalObjectStore(tmp_path / "objects")
    deps = api.server.app[rest.DEPS]
    deps.store = store
    export_id = await _completed(api)
    key = f"exports/team-a/{export_id}/Weekly_Report.csv"
    ref = store.put_bytes(key, b"a,b\n1,2\n")
    (ej,) = [o for o in api.kube.exportjobs() if o["metadata"]["name"] == f"export-{export_id}"]
    ej["status"]["output"]["fileRef"] = f"{store.uri}/{key}"
    assert ref.endswith(key)
    who = {"X-Test-Caller": "analyst"}
    link = await (await api.get(f"/api/v1/exports/{export_id}/download", headers=who)).json()
    path = link["download_url"].split("127.0.0.1", 1)[1].split("/", 1)[1]
    resp = await api.get("/" + path)  # no bearer token: the signature is the credential
    assert resp.status == 200 and await resp.read() == b"a,b\n1,2\n"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="Weekly_Report.csv"'
    tampered = "/" + path.replace("signature=", "signature=0")
    assert (await api.get(tampered)).status == 403
    deps.clock = lambda: NOW + dt.timedelta(hours=2)
    assert (await api.get("/" + path)).status == 403


async def test_an_export_created_with_kubectl_is_found_by_its_uid(api):
    manifest = {
        "apiVersion": "training.agentcore.io/v1alpha1",
        "kind": "ExportJob",
        "metadata": {"name": "by-hand"},
        "spec": {"exportType": "audit_log", "config": {"format": "json"}},
    }
    created = await api.kube.create(
        Resource("training.agentcore.io", "v1alpha1", "exportjobs"), manifest, "team-a"
    )
    uid = created["metadata"]["uid"]
    got = await (await api.get(f"/api/v1/exports/{uid}", headers={"X-Test-Caller": "analyst"})).json()
    # Defaults come from the model: the privacy level, the redaction rule and a Pending phase.
    assert got["id"] == uid and got["name"] == "by-hand" and got["status"] == "pending"
    assert (
        got["config"]["privacy_level"] == "anonymized" and got["config"]["redaction_rule"] == "pii-standard"
    )


async def test_a_completed_export_without_an_expiry_is_expired(api):
    export_id = await _completed(api)
    (ej,) = api.kube.exportjobs()
    del ej["status"]["output"]["expiresAt"]
    resp = await api.get(f"/api/v1/exports/{export_id}/download", headers={"X-Test-Caller": "analyst"})
    assert resp.status == 410 and (await resp.json())["error_code"] == "EXPORT_EXPIRED"


def test_the_caller_is_the_auth_principal():
    # One concept of the caller: the REST API defines no principal type or role names of its own.
    for name in ("Caller", "CallerLike", "ADMIN_ROLE", "ALL_NAMESPACES", "EXPORT_PERMISSION"):
        assert name not in vars(rest) or vars(rest)[name] is getattr(tokens, name)


async def test_full_exports_are_admin_only_for_get_list_download(api):
    """Red team (issue 12): a `data:export` token without admin read an admin's `full` export."""
    resp = await create(api, who="admin", level="full")
    full_id = (await resp.json())["id"]
    (ej,) = api.kube.exportjobs()
    ej["status"] = {
        "phase": "Completed",
        "exportId": full_id,
        "output": {
            "fileRef": f"s3://bucket/agentcore/exports/team-a/{full_id}/Weekly_Report.csv",
            "fileName": "Weekly_Report.csv",
            "contentType": "text/csv",
            "expiresAt": "2026-01-05T13:00:00Z",
        },
    }
    denied = {
        "detail": "Privacy level 'full' requires admin role",
        "status_code": 403,
        "error_code": "PRIVACY_LEVEL_DENIED",
        "your_role": "analyst",
        "required_role": "admin",
    }
    who = {"X-Test-Caller": "analyst"}
    for path in (f"/api/v1/exports/{full_id}", f"/api/v1/exports/{full_id}/download"):
        resp = await api.get(path, headers=who)
        assert resp.status == 403 and await resp.json() == denied, path
    for resp in (
        await api.post(f"/api/v1/exports/{full_id}/cancel", headers=who),
        await api.delete(f"/api/v1/exports/{full_id}", headers=who),
    ):
        assert resp.status == 403 and (await resp.json())["error_code"] == "PRIVACY_LEVEL_DENIED"
    assert api.store.deleted == [] and len(api.kube.exportjobs()) == 1
    listing = await (await api.get("/api/v1/exports", headers=who)).json()
    assert listing == {"items": [], "total": 0}
    # The admin still sees and downloads it.
    admin = {"X-Test-Caller": "admin"}
    assert (await api.get(f"/api/v1/exports/{full_id}/download", headers=admin)).status == 200
    assert (await (await api.get("/api/v1/exports", headers=admin)).json())["total"] == 1


@pytest.mark.parametrize("depth", [33, 100_000])
async def test_deeply_nested_bodies_are_a_400_naming_the_rule(api, depth: int):
    """Red team (issue 12): a deep body was a RecursionError, answered 500."""
    nested = "[" * depth + "]" * depth
    text = json.dumps(body())[:-1] + f', "extra": {nested}}}'
    headers = {"X-Test-Caller": "analyst", "Content-Type": "application/json"}
    resp = await api.post("/api/v1/exports", data=text, headers=headers)
    assert resp.status == 400
    out = await resp.json()
    assert out["error_code"] == "VALIDATION_ERROR" and "nested deeper than 32" in out["detail"]
    assert api.kube.exportjobs() == []
