"""JSON-RPC 2.0 over HTTP: framing, batches, notifications and every protocol-level error code."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from agentcore.server.jsonrpc import errors
from agentcore.server.jsonrpc.protocol import parse_json
from tests.unit.server.jsonrpc.conftest import Api, make_settings

JOB = "550e8400-e29b-41d4-a716-446655440000"


async def test_parse_error_has_null_id(api: Api) -> None:
    resp = await api.post(b'{"jsonrpc": "2.0", "method": "training.get_status", "params": {', raw=True)
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] is None and body["error"]["code"] == errors.PARSE_ERROR
    assert body["jsonrpc"] == "2.0"


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"\xff\xfe{", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}', b"1" * 5000],
    ids=["empty", "text", "bad-utf8", "nan", "infinity", "overflow", "huge-int"],
)
async def test_not_json_is_a_parse_error(api: Api, raw: bytes) -> None:
    body = await (await api.post(raw, raw=True)).json()
    assert body["error"]["code"] == errors.PARSE_ERROR


@pytest.mark.parametrize(
    "request_obj",
    [
        {"method": "training.get_status", "id": 1},  # no jsonrpc
        {"jsonrpc": "1.0", "method": "training.get_status", "id": 1},
        {"jsonrpc": "2.0", "method": 1, "id": 1},
        {"jsonrpc": "2.0", "method": "", "id": 1},
        {"jsonrpc": "2.0", "method": "training.get_status", "params": "bar", "id": 1},
        {"jsonrpc": "2.0", "method": "training.get_status", "id": True},
        {"jsonrpc": "2.0", "method": "training.get_status", "id": {"a": 1}},
        "a string",
        42,
    ],
)
async def test_invalid_request(api: Api, request_obj: object) -> None:
    body = await (await api.post(request_obj)).json()
    assert body["error"]["code"] == errors.INVALID_REQUEST
    if isinstance(request_obj, dict) and type(request_obj.get("id")) is int:
        assert body["id"] == 1  # a usable id is echoed
    else:
        assert body["id"] is None


async def test_empty_batch_is_one_invalid_request(api: Api) -> None:
    body = await (await api.post([])).json()
    assert body == {"jsonrpc": "2.0", "error": body["error"], "id": None}
    assert body["error"]["code"] == errors.INVALID_REQUEST


async def test_batch_of_non_objects_answers_each(api: Api) -> None:
    body = await (await api.post([1, 2, 3])).json()
    assert isinstance(body, list) and len(body) == 3
    assert all(r["error"]["code"] == errors.INVALID_REQUEST and r["id"] is None for r in body)


async def test_unknown_method(api: Api) -> None:
    error = await api.error("training.nope", {})
    assert error["code"] == errors.METHOD_NOT_FOUND
    assert error["data"]["method"] == "training.nope"


async def test_positional_params_are_invalid_params(api: Api) -> None:
    error = await api.error("training.get_status", [JOB])
    assert error["code"] == errors.INVALID_PARAMS


async def test_invalid_params_name_the_field(api: Api) -> None:
    error = await api.error("training.get_status", {"job_id": "job-1"})
    assert error["code"] == errors.INVALID_PARAMS
    assert error["data"]["field"] == "job_id"
    error = await api.error("training.get_status", {})
    assert error["data"] == {"field": "job_id", "error": "Field required"}
    error = await api.error("training.get_status", {"job_id": JOB, "extra": 1})
    assert error["data"]["field"] == "extra"


async def test_notification_gets_no_response(api: Api) -> None:
    resp = await api.post({"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": JOB}})
    assert resp.status == 204 and await resp.read() == b""
    # ...even when it fails (unknown method), and a batch of notifications gets nothing at all.
    resp = await api.post(
        [{"jsonrpc": "2.0", "method": "nope"}, {"jsonrpc": "2.0", "method": "rpc.discover"}]
    )
    assert resp.status == 204 and await resp.read() == b""
    assert "X-RateLimit-Limit" in resp.headers


async def test_mixed_batch_keeps_order_and_skips_notifications(api: Api) -> None:
    job = await api.start()
    batch = [
        {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": job["job_id"]}, "id": "1"},
        {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": JOB}},  # notification
        {"jsonrpc": "2.0", "method": "training.get_status", "params": {"job_id": JOB}, "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "nope", "id": 3},
    ]
    body = await (await api.post(batch)).json()
    assert [r["id"] for r in body] == ["1", "2", None, 3]
    assert body[0]["result"]["status"] == "queued"
    assert [r.get("error", {}).get("code") for r in body] == [
        None,
        errors.NOT_FOUND,
        errors.INVALID_REQUEST,
        errors.METHOD_NOT_FOUND,
    ]


@pytest.mark.parametrize("settings", [make_settings(max_batch_size=3)])
async def test_oversized_batch(api: Api) -> None:
    entry = {"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}
    body = await (await api.post([entry] * 4)).json()
    assert body["error"]["code"] == errors.INVALID_REQUEST and body["id"] is None
    assert len(await (await api.post([entry] * 3)).json()) == 3


@pytest.mark.parametrize("settings", [make_settings(max_body_bytes=4096)])
async def test_body_too_large(api: Api) -> None:
    big = {"jsonrpc": "2.0", "method": "rpc.discover", "params": {"pad": "x" * 5000}, "id": 1}
    resp = await api.post(big)
    assert resp.status == 413
    body = await resp.json()
    assert body["error"]["code"] == errors.INVALID_REQUEST and body["error"]["data"]["max_bytes"] == 4096
    # Chunked upload without Content-Length: the limit holds while reading.
    resp = await api.http.post(
        "/api/v1/jsonrpc",
        data=_chunks(json.dumps(big).encode()),
        headers={"Authorization": f"Bearer {api.default_token}"},
    )
    assert resp.status == 413


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 1000):
        yield data[i : i + 1000]


async def test_nesting_deeper_than_the_limit(api: Api) -> None:
    deep: object = "x"
    for _ in range(100):
        deep = {"a": deep}
    body = await (
        await api.post({"jsonrpc": "2.0", "method": "rpc.discover", "params": deep, "id": 1})
    ).json()
    assert body["error"]["code"] == errors.INVALID_REQUEST
    # Far past Python's recursion limit: the parser refuses, the server survives.
    raw = b"[" * 200_000 + b"]" * 200_000
    body = await (await api.post(raw, raw=True)).json()
    assert body["error"]["code"] == errors.INVALID_REQUEST  # valid JSON, only too deep: the depth rule
    assert (await api.call("rpc.discover"))["result"]["openrpc"].startswith("1.")


async def test_internal_error_is_generic_and_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    job = await api.start()
    api.kube.fail["patch"] = RuntimeError("etcd is on fire at /secret/path")
    with caplog.at_level(logging.ERROR):
        error = await api.error("training.cancel", {"job_id": job["job_id"]})
    assert error == {"code": errors.INTERNAL_ERROR, "message": "Internal error"}
    assert "etcd is on fire" in caplog.text  # the traceback stays in the server's log
    assert "Traceback" not in json.dumps(error)


async def test_string_and_number_ids_are_echoed(api: Api) -> None:
    for request_id in ("abc", 7, 1.5, None):
        reply = await api.call("rpc.discover", id=request_id)
        assert reply["id"] == request_id and "result" in reply


async def test_request_id_header(api: Api) -> None:
    resp = await api.post(
        {"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}, headers={"X-Request-ID": "req-42"}
    )
    assert resp.headers["X-Request-ID"] == "req-42"
    resp = await api.post(
        {"jsonrpc": "2.0", "method": "rpc.discover", "id": 1}, headers={"X-Request-ID": "bad id <script>"}
    )
    assert resp.headers["X-Request-ID"] != "bad id <script>" and len(resp.headers["X-Request-ID"]) == 32


async def test_wrong_http_method_is_not_a_500(api: Api) -> None:
    resp = await api.http.get("/api/v1/jsonrpc")
    assert resp.status == 405


def test_nesting_too_deep_for_the_parser_is_an_invalid_request() -> None:
    """Red team (issue 12): nesting past Python's recursion limit was a -32700 parse error (the
    JSON is valid); it is the same -32600 as any body over the depth limit."""
    for depth in (65, 100_000):
        with pytest.raises(errors.RpcError) as info:
            parse_json(b"[" * depth + b"]" * depth, 64)
        assert info.value.code == errors.INVALID_REQUEST and "nested deeper than 64" in str(info.value.data)


@pytest.mark.parametrize("request_id", [1, 0, -7, 2**80, "abc", 'q"uote', 1.5, None])
def test_a_pre_encoded_result_is_spliced_with_any_id(request_id: object) -> None:
    from agentcore.server.jsonrpc.protocol import Encoded, dumps, success

    body = dumps(success(request_id, Encoded(b'{"a":[1,2]}')))  # type: ignore[arg-type]
    assert json.loads(body) == {"jsonrpc": "2.0", "result": {"a": [1, 2]}, "id": request_id}
