"""Property-based tests: whatever arrives at the endpoint — bytes, JSON of any shape, requests with
wrong types, deep nesting, huge bodies — the answer is a JSON-RPC response (or 204/413), never an
HTTP 500, a traceback or an internal error, and the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore.server.app import create_app
from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.models import (
    CancelParams,
    EvaluateParams,
    ExportTrajectoriesParams,
    ListJobsParams,
    StartGrpoParams,
)
from agentcore.storage.objectstore import LocalObjectStore
from tests.unit.server.jsonrpc.conftest import FakeEvaluator, FakeKube, make_settings, token

METHODS = [
    "training.start_grpo",
    "training.get_status",
    "training.cancel",
    "training.evaluate",
    "training.export_trajectories",
    "training.list_jobs",
    "rpc.discover",
]
PARAM_NAMES = sorted(
    {
        name
        for model in (StartGrpoParams, CancelParams, EvaluateParams, ExportTrajectoriesParams, ListJobsParams)
        for name in model.model_fields
    }
)
KNOWN_CODES = set(errors.MESSAGES) - {errors.INTERNAL_ERROR}
MAX_BODY = 1 << 20
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class ThreadedServer:
    """The real app on a real socket, in a thread with its own event loop, so that synchronous
    hypothesis tests can hammer it."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        assert self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    base: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        make_settings(database_url=f"sqlite+aiosqlite:///{base / 'db.sqlite'}", max_body_bytes=MAX_BODY),
        kube_client_factory=FakeKube,
        object_store=LocalObjectStore(base / "objects"),
        evaluator=FakeEvaluator(),
    )
    with ThreadedServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ThreadedServer) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token(namespaces=('*',))}"
        yield session


def post(server: ThreadedServer, http: requests.Session, body: bytes) -> requests.Response:
    return http.post(f"http://127.0.0.1:{server.port}/api/v1/jsonrpc", data=body, timeout=30)


def check_reply(reply: Any) -> None:
    assert isinstance(reply, dict) and reply.get("jsonrpc") == "2.0", reply
    assert ("result" in reply) != ("error" in reply), reply
    assert "id" in reply
    if "error" in reply:
        assert reply["error"]["code"] in KNOWN_CODES, reply
        assert isinstance(reply["error"]["message"], str)


def check(response: requests.Response) -> None:
    assert response.status_code in (200, 204, 413), response.status_code
    assert "Traceback" not in response.text
    assert "X-RateLimit-Limit" in response.headers
    if response.status_code == 204:
        assert response.content == b""
        return
    payload = response.json()
    for reply in payload if isinstance(payload, list) else [payload]:
        check_reply(reply)


def still_serving(server: ThreadedServer, http: requests.Session) -> None:
    response = post(server, http, b'{"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}')
    assert response.status_code == 200 and response.json()["result"]["openrpc"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
params = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={name: json_values for name in PARAM_NAMES}),
    st.fixed_dictionaries(
        {"job_id": st.uuids().map(str)},
        optional={"limit": json_values, "offset": json_values, "cursor": json_values, "reason": json_values},
    ),
)
requests_ = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2])},
    optional={
        "method": st.sampled_from(METHODS) | st.text(max_size=20),
        "params": params,
        "id": st.none()
        | st.integers()
        | st.text(max_size=10)
        | st.booleans()
        | st.floats(allow_nan=False, allow_infinity=False),
    },
)


@FUZZ
@given(body=st.binary(max_size=2000))
def test_arbitrary_bytes(server: ThreadedServer, http: requests.Session, body: bytes) -> None:
    check(post(server, http, body))


@FUZZ
@given(value=json_values)
def test_arbitrary_json(server: ThreadedServer, http: requests.Session, value: Any) -> None:
    check(post(server, http, json.dumps(value).encode()))


@FUZZ
@given(request=requests_)
def test_requests_with_wrong_types(
    server: ThreadedServer, http: requests.Session, request: dict[str, Any]
) -> None:
    check(post(server, http, json.dumps(request).encode()))


@FUZZ
@given(batch=st.lists(requests_ | json_values, max_size=8))
def test_batches(server: ThreadedServer, http: requests.Session, batch: list[Any]) -> None:
    response = post(server, http, json.dumps(batch).encode())
    check(response)
    if batch and response.status_code == 200:
        assert isinstance(response.json(), list)


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(min_value=1, max_value=50_000), opener=st.sampled_from(["[", '{"a":']))
def test_deep_nesting(server: ThreadedServer, http: requests.Session, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    body = (
        '{"jsonrpc": "2.0", "method": "training.list_jobs", "params": {"agent_id": ' + nested + '}, "id": 1}'
    )
    check(post(server, http, body.encode()))


@pytest.mark.parametrize("size", [10_000, 500_000, MAX_BODY - 200, MAX_BODY + 1, 4 * MAX_BODY])
def test_huge_payloads(server: ThreadedServer, http: requests.Session, size: int) -> None:
    params = {"agent_id": "a", "config": {}, "training_data": [{"query": "x" * size, "expected_outcome": {}}]}
    body = json.dumps({"jsonrpc": "2.0", "method": "training.start_grpo", "params": params, "id": 1}).encode()
    response = post(server, http, body)
    check(response)
    assert response.status_code == (413 if len(body) > MAX_BODY else 200)
    many = json.dumps([{"jsonrpc": "2.0", "method": "rpc.discover", "id": i} for i in range(size // 1000)])
    check(post(server, http, many.encode()))
    still_serving(server, http)


def test_still_serving_after_the_storm(server: ThreadedServer, http: requests.Session) -> None:
    still_serving(server, http)
