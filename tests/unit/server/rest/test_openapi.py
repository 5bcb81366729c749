"""The Exports API's OpenAPI document: valid OpenAPI 3.1, served without a token, one operation
per route the server has, and a conformance check that really rejects a drifted answer."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema.exceptions import ValidationError
from openapi_spec_validator import validate

from agentcore.api.exports import ExportPhase
from agentcore.exports import views
from agentcore.server.rest import openapi
from agentcore.server.rest.exports import ExportDeps, add_export_routes
from tests.openapi_support import check_response


def test_the_document_is_valid_openapi_3_1():
    doc = openapi.document()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    assert schemas["CreateExportRequest"]["additionalProperties"] is False
    assert set(schemas["ExportConfig"]["properties"]) >= {"format", "privacy_level", "redaction_rule"}


def test_statuses_are_the_phases_api_values():
    assert [p.api_value for p in ExportPhase] == views.STATUSES


async def _client() -> TestClient:
    app = web.Application()
    add_export_routes(app, ExportDeps(kube=None, authenticate=None))  # type: ignore[arg-type]
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_served_without_a_token_and_every_route_is_documented():
    client = await _client()
    try:
        resp = await client.get(openapi.OPENAPI_PATH)
        assert resp.status == 200
        assert await resp.json() == json.loads(json.dumps(openapi.document()))
        served = {
            (route.method.lower(), route.resource.canonical)
            for route in client.app.router.routes()
            if route.resource is not None and route.method != "HEAD"
        }
    finally:
        await client.close()
    documented = {(m, p) for p, ops in openapi.document()["paths"].items() for m in ops}
    internal = {("get", openapi.OPENAPI_PATH), ("get", f"{openapi.BASE}/{{id}}/file")}
    assert served - internal == documented


EXPORT_ID = "0b6f6c1e-8a3e-4a59-9d0f-3f0f5b7a1c01"
CANCELLED = {"id": EXPORT_ID, "status": "cancelled", "message": "Export cancelled successfully"}


def test_the_conformance_check_rejects_drift():
    path = f"/api/v1/exports/{EXPORT_ID}/cancel"
    assert check_response("POST", path, 200, json.dumps(CANCELLED).encode())
    with pytest.raises(ValidationError):  # an undocumented key
        check_response("POST", path, 200, json.dumps({**CANCELLED, "extra": 1}).encode())
    with pytest.raises(ValidationError):  # a status outside the enum
        check_response("POST", path, 200, json.dumps({**CANCELLED, "status": "stopped"}).encode())
    with pytest.raises(AssertionError, match="not in"):  # an undocumented HTTP status
        check_response("POST", path, 418, b"{}")
    with pytest.raises(ValidationError):  # an error body without its error_code
        check_response("POST", path, 409, json.dumps({"detail": "x", "status_code": 409}).encode())
    assert not check_response("GET", "/healthz", 200, b"ok")  # not this API's route
