"""The facade over kubernetes-asyncio: verbs, errors, content types, watches and client-cert TLS."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agentcore.devenv.certs import TinyCA
from agentcore.kube import config as kube_config
from agentcore.kube.client import (
    PODS,
    STRATEGIC_PATCH,
    TRAININGJOB_RESOURCE,
    ApiError,
    KubeClient,
)
from tests.unit.kube.conftest import FakeApiServer, as_json, kubeconfig, serve

POD = "/api/v1/namespaces/ns/pods/p"


@pytest.fixture
async def kube(apiserver: FakeApiServer, tmp_path: Path) -> AsyncIterator[KubeClient]:
    config = kube_config.load(kubeconfig(tmp_path / "config", apiserver.url))
    async with KubeClient(config) as client:
        yield client


@pytest.mark.parametrize(("status", "reason"), [(404, "NotFound"), (409, "AlreadyExists"), (422, "Invalid")])
async def test_api_errors_carry_status_reason_and_body(
    apiserver: FakeApiServer, kube: KubeClient, status: int, reason: str
) -> None:
    body = {"kind": "Status", "status": "Failure", "reason": reason, "message": "nope", "code": status}
    apiserver.reply("GET", POD, status, body)
    with pytest.raises(ApiError) as caught:
        await kube.get(PODS, "p", "ns")
    assert (caught.value.status, caught.value.reason, caught.value.body) == (status, reason, body)
    assert "nope" in str(caught.value)


async def test_plain_text_error_bodies_survive(apiserver: FakeApiServer, kube: KubeClient) -> None:
    async def gateway(_: web.Request) -> web.Response:
        return web.Response(status=502, text="bad gateway")

    apiserver.routes[("GET", POD)] = gateway
    with pytest.raises(ApiError) as caught:
        await kube.get(PODS, "p", "ns")
    assert (caught.value.status, caught.value.body, caught.value.reason) == (502, "bad gateway", "")


async def test_verbs_send_json_and_return_dicts(apiserver: FakeApiServer, kube: KubeClient) -> None:
    apiserver.reply("POST", "/api/v1/namespaces/ns/pods", 201, {"metadata": {"name": "p"}})
    created = await kube.create(PODS, {"metadata": {"name": "p"}}, "ns")
    listed = await kube.list(TRAININGJOB_RESOURCE, "ns", labelSelector="a=b", limit=5)
    await kube.delete(PODS, "p", "ns", gracePeriodSeconds=0)
    assert created == {"metadata": {"name": "p"}} and listed == {}
    post, get, delete = apiserver.seen
    assert as_json(post.body) == {"metadata": {"name": "p"}}
    assert get.path == "/apis/training.agentcore.io/v1alpha1/namespaces/ns/trainingjobs"
    assert get.query == {"labelSelector": "a=b", "limit": "5"}
    assert as_json(delete.body) == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
    assert post.headers["Authorization"] == "Bearer static-token"


async def test_empty_answer_is_none(apiserver: FakeApiServer, kube: KubeClient) -> None:
    async def empty(_: web.Request) -> web.Response:
        return web.Response(status=200)

    apiserver.routes[("DELETE", POD)] = empty
    assert await kube.delete(PODS, "p", "ns") is None


async def test_patch_content_types(apiserver: FakeApiServer, kube: KubeClient) -> None:
    await kube.patch(PODS, "p", {"metadata": {"labels": {"a": "b"}}}, "ns", sub="status")
    await kube.patch(PODS, "p", {"spec": {}}, "ns", content_type=STRATEGIC_PATCH)
    await kube.request(
        "PATCH", POD, [{"op": "remove", "path": "/x"}], content_type="application/json-patch+json"
    )
    types = [s.headers["Content-Type"] for s in apiserver.seen]
    assert types == [
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
    ]
    assert apiserver.seen[0].path == POD + "/status"
    assert as_json(apiserver.seen[2].body) == [{"op": "remove", "path": "/x"}]


async def test_watch_streams_line_by_line_until_the_server_closes(
    apiserver: FakeApiServer, kube: KubeClient
) -> None:
    events = [{"type": "ADDED", "object": {"metadata": {"resourceVersion": str(i)}}} for i in range(3)]
    events.append({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for event in events:
            # One event per write, the last line split across two writes: lines, not chunks.
            line = json.dumps(event).encode() + b"\n"
            await resp.write(line[:5])
            await resp.write(line[5:] + b"\n")
        await resp.write_eof()
        return resp

    apiserver.routes[("GET", "/api/v1/namespaces/ns/pods")] = stream
    seen = [
        e async for e in kube.watch(PODS, "ns", resource_version="7", timeout_seconds=5, labelSelector="x")
    ]
    assert seen == events
    query = apiserver.seen[0].query
    assert query == {
        "watch": "1",
        "timeoutSeconds": "5",
        "allowWatchBookmarks": "true",
        "labelSelector": "x",
        "resourceVersion": "7",
    }


async def test_watch_gone_is_an_api_error(apiserver: FakeApiServer, kube: KubeClient) -> None:
    apiserver.reply("GET", "/api/v1/pods", 410, {"kind": "Status", "reason": "Expired", "code": 410})
    with pytest.raises(ApiError) as caught:
        _ = [e async for e in kube.watch(PODS, resource_version="1")]
    assert (caught.value.status, caught.value.reason) == (410, "Expired")


async def test_client_certificate_auth_over_tls(tmp_path: Path) -> None:
    ca = TinyCA(tmp_path / "pki")
    server_pair = ca.issue("server", "apiserver", hosts=("127.0.0.1",), server=True)
    client_pair = ca.issue("admin", "agentcore-admin", org="system:masters")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert_path))
    tls.load_cert_chain(server_pair.cert, server_pair.key)
    tls.verify_mode = ssl.CERT_REQUIRED
    server = FakeApiServer()
    runner = await serve(server, tls)
    try:
        path = kubeconfig(
            tmp_path / "config",
            server.url,
            # Inline (-data) CA and key, a file for the certificate: both forms still load.
            user={
                "client-certificate": str(client_pair.cert),
                "client-key-data": base64.b64encode(client_pair.key.read_bytes()).decode(),
            },
            cluster={"certificate-authority-data": base64.b64encode(ca.cert_path.read_bytes()).decode()},
        )
        async with KubeClient(kube_config.load(path)) as kube:
            await kube.get(PODS, "p", "ns")
    finally:
        await runner.cleanup()
    assert server.seen[0].peer_cn == "agentcore-admin"
    assert "Authorization" not in server.seen[0].headers


async def test_before_write_guards_every_write_and_no_read(apiserver: FakeApiServer, tmp_path: Path) -> None:
    """The operator's leader fence: a guard that raises stops the request before it is sent."""

    class Refused(Exception):
        pass

    checked: list[tuple[str, str]] = []

    def guard(method: str, path: str) -> None:
        checked.append((method, path))
        raise Refused(path)

    config = kube_config.load(kubeconfig(tmp_path / "config", apiserver.url))
    async with KubeClient(config, before_write=guard, user_agent="agentcore-operator/op-1_ab") as fenced:
        await fenced.get(PODS, "p", "ns")
        for write in (
            fenced.create(PODS, {"metadata": {"name": "p"}}, "ns"),
            fenced.patch(PODS, "p", {"metadata": {}}, "ns"),
            fenced.replace(PODS, "p", {"metadata": {}}, "ns"),
            fenced.delete(PODS, "p", "ns"),
        ):
            with pytest.raises(Refused):
                await write
    assert [s.method for s in apiserver.seen] == ["GET"]
    assert apiserver.seen[0].headers["User-Agent"] == "agentcore-operator/op-1_ab"
    assert [m for m, _ in checked] == ["POST", "PATCH", "PUT", "DELETE"]


async def test_before_write_is_checked_again_once_the_connection_is_ready(
    apiserver: FakeApiServer, tmp_path: Path
) -> None:
    """A lease that runs out while the request waits for a connection still stops it: the guard
    runs again right before the first byte is written."""

    class Refused(Exception):  # not an OSError: aiohttp would wrap that in ClientOSError
        pass

    calls: list[str] = []

    def guard(method: str, path: str) -> None:
        calls.append(method)
        if len(calls) % 2 == 0:  # the early check passes, the late one refuses
            raise Refused(path)

    config = kube_config.load(kubeconfig(tmp_path / "config", apiserver.url))
    async with KubeClient(config, before_write=guard) as fenced:
        with pytest.raises(Refused):
            await fenced.patch(PODS, "p", {"metadata": {}}, "ns")
        await fenced.get(PODS, "p", "ns")  # the connection is still usable
    assert [s.method for s in apiserver.seen] == ["GET"]
    assert calls == ["PATCH", "PATCH"]
