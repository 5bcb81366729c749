"""Where the configuration comes from, and how credentials are obtained (exec plugins included)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest
from aiohttp import web

from agentcore.kube import config as kube_config
from agentcore.kube.client import NAMESPACES, KubeClient
from tests.unit.kube.conftest import FakeApiServer, exec_plugin, kubeconfig, plugin_runs


def service_account(directory: Path, token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory.mkdir()
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_text("not checked for plain http")
    (directory / "namespace").write_text("pod-ns")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")


async def test_exec_plugin_token_reaches_the_authorization_header(
    apiserver: FakeApiServer, tmp_path: Path
) -> None:
    path = kubeconfig(tmp_path / "config", apiserver.url, user=exec_plugin(tmp_path, "from-plugin"))
    async with KubeClient(kube_config.load(path)) as kube:
        await kube.get(NAMESPACES, "default")
        await kube.get(NAMESPACES, "default")
    assert [s.headers["Authorization"] for s in apiserver.seen] == ["Bearer from-plugin"] * 2
    assert plugin_runs(tmp_path) == 1, "a token without expiry is kept, not fetched per request"


async def test_exec_plugin_runs_again_when_its_token_expires(
    apiserver: FakeApiServer, tmp_path: Path
) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = kubeconfig(tmp_path / "config", apiserver.url, user=exec_plugin(tmp_path, "short", soon))
    async with KubeClient(kube_config.load(path)) as kube:
        await kube.get(NAMESPACES, "default")
        await kube.get(NAMESPACES, "default")
    # The library refuses a token within 5 minutes of expiry, ours within one: each request refreshes.
    assert plugin_runs(tmp_path) >= 2


async def test_a_401_runs_the_plugin_again_and_retries_once(apiserver: FakeApiServer, tmp_path: Path) -> None:
    async def only_second_token(request: web.Request) -> web.Response:
        ok = request.headers["Authorization"] == "Bearer tok-2"
        return web.json_response({"ok": ok}, status=200 if ok else 401)

    apiserver.routes[("GET", "/api/v1/namespaces/default")] = only_second_token
    path = kubeconfig(tmp_path / "config", apiserver.url, user=exec_plugin(tmp_path, "tok", numbered=True))
    async with KubeClient(kube_config.load(path)) as kube:
        assert await kube.get(NAMESPACES, "default") == {"ok": True}
    assert [s.headers["Authorization"] for s in apiserver.seen] == ["Bearer tok-1", "Bearer tok-2"]


async def test_kopf_connection_info_carries_the_exec_token_and_expiry(tmp_path: Path) -> None:
    expiry = "2099-01-01T00:00:00Z"
    path = kubeconfig(
        tmp_path / "config", "https://127.0.0.1:1", user=exec_plugin(tmp_path, "kopf-tok", expiry)
    )
    info = await kube_config.connection_info(path)
    assert (info.server, info.scheme, info.token) == ("https://127.0.0.1:1", "Bearer", "kopf-tok")
    assert info.expiration == dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    assert info.default_namespace == "team-a"


def test_sync_load_outside_a_loop_is_complete(tmp_path: Path) -> None:
    # kopf runs a sync login handler in a worker thread, as app.py runs load via to_thread.
    path = kubeconfig(tmp_path / "config", "https://127.0.0.1:1", user=exec_plugin(tmp_path, "sync-tok"))
    assert kube_config.load(path).bearer_token() == "sync-tok"


async def test_kubeconfig_paths_are_merged_with_the_context_in_the_second(
    apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig(tmp_path / "a", "http://127.0.0.1:1", context="other", current=False)
    second = kubeconfig(tmp_path / "b", apiserver.url, user={"token": "second"}, context="wanted")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)]))
    config = kube_config.load()
    assert (config.server, config.namespace) == (apiserver.url, "team-a")
    async with KubeClient(config) as kube:
        await kube.list(NAMESPACES)
    assert apiserver.seen[0].headers["Authorization"] == "Bearer second"
    assert kube_config.load(context="other").server == "http://127.0.0.1:1"


def test_first_file_that_names_a_current_context_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig(tmp_path / "a", "http://first:1", context="one")
    second = kubeconfig(tmp_path / "b", "http://second:1", context="two")
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    assert kube_config.load().server == "http://first:1"


def test_kubeconfig_wins_over_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service_account(kube_config.SERVICE_ACCOUNT_DIR, "sa-token", monkeypatch)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "config", "http://pod-seam:1")))
    assert kube_config.load().server == "http://pod-seam:1"


def test_in_cluster_wins_over_home_config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / ".kube").mkdir()
    kubeconfig(isolated / ".kube" / "config", "http://home:1")
    service_account(kube_config.SERVICE_ACCOUNT_DIR, "sa-token", monkeypatch)
    config = kube_config.load()
    assert (config.server, config.namespace, config.bearer_token()) == (
        "https://10.0.0.1:6443",
        "pod-ns",
        "sa-token",
    )


def test_home_config_is_the_last_resort(isolated: Path) -> None:
    with pytest.raises(kube_config.ConfigError):
        kube_config.load()
    (isolated / ".kube").mkdir()
    kubeconfig(isolated / ".kube" / "config", "http://home:1")
    assert kube_config.load().server == "http://home:1"


def test_unknown_context_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(kube_config.ConfigError):
        kube_config.load(kubeconfig(tmp_path / "config", "http://x:1"), context="nope")


async def test_token_file_is_reread_as_it_rotates(
    apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The node agent's per-pod kubeconfig points at a tokenFile; bound tokens rotate.
    token = tmp_path / "token"
    token.write_text("first\n")
    monkeypatch.setattr(kube_config, "TOKEN_FILE_REREAD_SECONDS", 0.0)
    config = await asyncio.to_thread(
        kube_config.load, kubeconfig(tmp_path / "c", apiserver.url, {"tokenFile": str(token)})
    )
    async with KubeClient(config) as kube:
        await kube.list(NAMESPACES)
        token.write_text("second")
        await kube.list(NAMESPACES)
    assert [s.headers["Authorization"] for s in apiserver.seen] == ["Bearer first", "Bearer second"]
