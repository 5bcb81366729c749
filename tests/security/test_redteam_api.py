"""Red team (issue 12) against the real API server: `agentcore api` as its own process on a real TCP
port, with real JWTs, the real kube-apiserver, PostgreSQL and MinIO, and the real operator running
export pods on the node agent. One test per finding; each asserts the secure behaviour exactly.

One API server serves the module (started once); the `--insecure-disable-auth` test starts its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import select

from agentcore.auth.tokens import EXPORT, issue_token
from agentcore.devenv.procs import ManagedProcess, free_port, wait_until
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.tables import AuditEntry
from agentcore.storage.trajectories import TrajectoryRepository
from tests.conftest import get_json, wait_for
from tests.exports_support import PII_AGENT, PII_SSN, read_rows, trajectory_rows
from tests.integration.exports.test_exports import REST, SECRET, Scenario, Tenant, _namespace, token
from tests.operator_support import AGENTCORE, _http_ok
from tests.security.test_export_namespace import _seed
from tests.security.test_ingest_auth import _job

pytestmark = pytest.mark.integration
RPC = "/api/v1/jsonrpc"
EXPORTS = "/api/v1/exports"


@dataclass
class Api:
    base: str  # http://127.0.0.1:<port>
    proc: ManagedProcess
    tenant: Tenant
    scenario: Scenario
    job_name: str
    job_uid: str
    env: dict[str, str]
    state: Path

    @property
    def url(self) -> str:  # what Scenario posts to (it takes a RestServer-like object)
        return self.base + EXPORTS

    def rpc(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> requests.Response:
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        return requests.post(self.base + RPC, json=body, headers=headers, timeout=60)


def _serve(
    env: dict[str, str], state: Path, *flags: str, ready: str = "/readyz"
) -> tuple[ManagedProcess, int]:
    """`agentcore api` as a process (as the chart runs it), once it answers `ready` on loopback."""
    port = free_port()
    argv = [AGENTCORE, "api", *flags, "--port", str(port)]
    proc = ManagedProcess(f"api-{port}", argv, state / f"api-{port}.log", env=env, cwd=state)
    wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}{ready}"), 60, f"agentcore api {flags}", proc)
    return proc, port


async def _seed_job(dsn: str, namespace: str, uid: str, name: str) -> None:
    engine = make_engine(dsn)
    await TrajectoryRepository(session_factory(engine)).add_batch(
        trajectory_rows(namespace, uid, name, iterations=2)
    )
    await engine.dispose()


@pytest.fixture(scope="module")
def api(control_plane, operator, postgres, tmp_path_factory) -> Iterator[Api]:
    state = tmp_path_factory.mktemp("redteam-api")
    tenant = _namespace(control_plane, "redteam")
    ns = tenant.namespace
    asyncio.run(_seed(postgres.dsn, ns))  # rows for the exports
    # A suspended TrainingJob with trajectories, for JSON-RPC training.export_trajectories.
    manifest = _job("tj-audited", "audited")
    manifest["spec"]["suspend"] = True
    control_plane.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump(manifest))
    uid = get_json(control_plane, "-n", ns, "get", "trainingjob", "tj-audited")["metadata"]["uid"]
    asyncio.run(_seed_job(postgres.dsn, ns, uid, "tj-audited"))
    env = {**operator.env, "AGENTCORE_JWT_SECRET": SECRET}
    env.pop("AGENTCORE_HOST", None)
    proc, port = _serve(env, state, "--host", "127.0.0.1")
    server = Api(f"http://127.0.0.1:{port}", proc, tenant, None, "tj-audited", uid, env, state)  # type: ignore[arg-type]
    server.scenario = Scenario(control_plane, server, operator)
    try:
        yield server
    finally:
        proc.stop(10)
        control_plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)


# --- H1a: `full` exports are admin-only for get, list and download ---------------------------------


def test_full_export_is_admin_only_for_get_list_and_download(api):
    """Issue 12, H1a: a `full` export (raw agent data) was admin-only at creation only; a token with
    just `data:export` in the same namespace could get it, see it listed and download it. Now every
    verb on it is 403 PRIVACY_LEVEL_DENIED for a non-admin, it is absent from their list, and nothing
    of it (id, file name, download URL, data) reaches them; the admin gets, lists and downloads it."""
    sc, tenant = api.scenario, api.tenant
    ns = tenant.namespace
    admin = token("admin@corp", [ns], admin=True)
    bare = issue_token(SECRET, "exporter@corp", [EXPORT], [ns])  # only data:export, no role
    callers = {"viewer": {"Authorization": f"Bearer {bare}"}, "analyst": token("analyst@corp", [ns])}
    sc.create("full", tenant, "trajectories", "json", "full", admin)
    sc.create("own", tenant, "trajectories", "csv", "anonymized", callers["viewer"])
    full_id, own_id = sc.requested["full"].id, sc.requested["own"].id
    assert sc.finished("full")["status"] == "completed"
    assert sc.finished("own")["status"] == "completed"

    for role, who in callers.items():
        denied = {
            "detail": "Privacy level 'full' requires admin role",
            "status_code": 403,
            "error_code": "PRIVACY_LEVEL_DENIED",
            "your_role": role,
            "required_role": "admin",
        }
        answers = [
            REST.get(f"{api.url}/{full_id}", headers=who, timeout=30),
            REST.get(f"{api.url}/{full_id}", headers=who, params={"project_id": ns}, timeout=30),
            REST.get(f"{api.url}/{full_id}/download", headers=who, timeout=30),
            REST.get(f"{api.url}/{full_id}/download", headers=who, params={"project_id": ns}, timeout=30),
            REST.post(f"{api.url}/{full_id}/cancel", headers=who, timeout=30),
            REST.delete(f"{api.url}/{full_id}", headers=who, timeout=30),
        ]
        for resp in answers:
            where = f"{role}: {resp.request.method} {resp.url}"
            assert resp.status_code == 403, f"{where} answered {resp.status_code}: {resp.text}"
            assert resp.json() == denied, where
        for params in ({}, {"project_id": ns}, {"status": "completed"}, {"export_type": "trajectories"}):
            listing = REST.get(api.url, headers=who, params=params, timeout=30)
            assert listing.status_code == 200, listing.text
            ids = [item["id"] for item in listing.json()["items"]]
            assert ids == [own_id] and listing.json()["total"] == 1, (role, params, listing.json())
        # The caller's own anonymized export downloads: the refusal is about the level, not the route.
        own = REST.get(f"{api.url}/{own_id}/download", headers=who, timeout=30)
        assert own.status_code == 200 and own.json()["download_url"], own.text

    # Denied deletes and cancels changed nothing; the admin still sees, lists and downloads it.
    assert sc.get("full")["status"] == "completed"
    listed = REST.get(api.url, headers=admin, params={"project_id": ns}, timeout=30).json()
    assert {item["id"] for item in listed["items"]} == {full_id, own_id} and listed["total"] == 2
    data, info, _ = sc.download("full")
    rows = read_rows("json", data)
    assert len(rows) == 32 and rows[0]["agent_id"] == PII_AGENT and PII_SSN in rows[0]["query"]
    assert info["file_name"] == "full_export.json"


# --- M4: JSON-RPC training.export_trajectories is audited -----------------------------------------


async def _audit_entries(dsn: str, request_id: str) -> list[AuditEntry]:
    engine = make_engine(dsn)
    try:
        async with session_factory(engine)() as session:
            found = await session.execute(select(AuditEntry).where(AuditEntry.request_id == request_id))
            return [row[0] for row in found.all()]
    finally:
        await engine.dispose()


def test_jsonrpc_export_trajectories_is_in_the_audit_log(api, postgres):
    """Issue 12, M4: trajectories left the platform through JSON-RPC `training.export_trajectories`
    without an audit record (only the REST exports were audited). A real call over HTTP now leaves
    exactly one `trajectories.export` row in PostgreSQL's audit_log: who, which job, what was asked
    and how many rows went out."""
    ns = api.tenant.namespace
    who = token("auditor@corp", [ns])

    def cached() -> bool:  # the API server's watch cache has the job
        return "result" in api.rpc("training.get_status", {"job_id": api.job_uid}, who).json()

    wait_for(cached, 30, what="the TrainingJob in the API server's cache")
    request_id = f"redteam-m4-{uuid.uuid4().hex}"
    params = {"job_id": api.job_uid, "limit": 5, "success_only": True}
    resp = api.rpc("training.export_trajectories", params, {**who, "X-Request-ID": request_id})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == request_id
    result = resp.json()["result"]
    assert result["returned_count"] == 5 and len(result["trajectories"]) == 5
    assert result["trajectories"][0]["query"]  # data really left the platform

    entries = wait_for(
        lambda: asyncio.run(_audit_entries(postgres.dsn, request_id)), 10, what="the audit entry"
    )
    assert len(entries) == 1, [(e.action, e.actor) for e in entries]
    entry = entries[0]
    assert (entry.namespace, entry.actor, entry.action, entry.outcome) == (
        ns,
        "auditor@corp",
        "trajectories.export",
        "success",
    )
    assert (entry.resource_kind, entry.resource_name) == ("TrainingJob", api.job_name)
    assert entry.details == {
        "job_id": api.job_uid,
        "returned_count": 5,
        "offset": 0,
        "cursor": False,
        "success_only": True,
        "min_reward": None,
    }
    assert abs((dt.datetime.now(dt.UTC) - entry.occurred_at).total_seconds()) < 120


# --- L5: --insecure-disable-auth listens on loopback only ------------------------------------------


def _machine_addresses() -> list[str]:
    """The machine's non-loopback addresses (`hostname -I`), without link-local ones."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    found = []
    for text in out:
        addr = ipaddress.ip_address(text)
        if not (addr.is_loopback or addr.is_link_local):
            found.append(text)
    return found


def _connect(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect((host, port))


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* shows them) with a socket listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # TCP_LISTEN
                found.append(addr)
    return found


def test_insecure_disable_auth_listens_on_loopback_only(api):
    """Issue 12, L5: `agentcore api --insecure-disable-auth` (every caller an admin of every namespace)
    bound 0.0.0.0, so anyone who could reach the machine owned the platform. Without --host it now
    listens on 127.0.0.1 only: loopback answers, the machine's other addresses refuse the connection."""
    addresses = _machine_addresses()
    # Control: those addresses are this machine's and connectable here (a listener on each answers).
    for host in addresses:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.bind((host, 0))
            listener.listen(1)
            _connect(host, listener.getsockname()[1])

    proc, port = _serve(api.env, api.state, "--insecure-disable-auth", ready="/healthz")
    try:
        assert "AUTHENTICATION IS DISABLED" in proc.log_tail(1 << 16)
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        # Unauthenticated admin: what anyone reaching the port gets (so it must be loopback only).
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
        for host in addresses:
            with pytest.raises(ConnectionRefusedError):
                _connect(host, port)
        assert _listening(port) == ["0100007F"], f"listening on {_listening(port)} (hex), not 127.0.0.1"
    finally:
        proc.stop(10)


# --- L6: REST bodies nested too deep are a 400 naming the rule ------------------------------------


def _exportjobs(api: Api) -> set[str]:
    listing = get_json(api.scenario.cp, "-n", api.tenant.namespace, "get", "exportjobs")
    return {item["metadata"]["name"] for item in listing["items"]}


def test_deeply_nested_rest_body_is_a_400_naming_the_rule(api):
    """Issue 12, L6: REST bodies had no depth limit; a deeply nested one reached a RecursionError and
    was answered 500. On the real server it is now a 400 VALIDATION_ERROR that names the limit (32
    levels), both just past it and far past the parser's recursion limit; nothing is created, and
    the server keeps serving. (The JSON-RPC endpoint applies its own 64-level rule, -32600.)"""
    ns = api.tenant.namespace
    who = token("deep@corp", [ns])
    before = _exportjobs(api)
    valid = {
        "project_id": ns,
        "name": "deep",
        "export_type": "trajectories",
        "config": {"format": "csv", "privacy_level": "anonymized"},
    }
    # Just past each endpoint's limit, and far past the decoder's recursion limit.
    for depth, rpc_depth in ((33, 65), (100_000, 100_000)):
        nested = "[" * depth + "]" * depth
        text = json.dumps(valid)[:-1] + f', "extra": {nested}}}'
        headers = {**who, "Content-Type": "application/json"}
        resp = REST.post(api.url, data=text, headers=headers, timeout=60)
        assert resp.status_code == 400, f"depth {depth}: {resp.status_code} {resp.text[:300]}"
        assert resp.json() == {
            "detail": "Request body is JSON nested deeper than 32 levels",
            "status_code": 400,
            "error_code": "VALIDATION_ERROR",
        }, depth
        deep = "[" * rpc_depth + "]" * rpc_depth
        rpc = f'{{"jsonrpc": "2.0", "method": "training.list_jobs", "params": {{"x": {deep}}}, "id": 7}}'
        answer = requests.post(api.base + RPC, data=rpc, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text[:300]
        assert answer.json()["error"] == {
            "code": -32600,
            "message": "Invalid Request",
            "data": {"error": "JSON nested deeper than 64 levels"},
        }, depth
    # The same body without the nesting is accepted: the 400 was the depth rule's, nothing else's.
    ok = REST.post(api.url, json=valid, headers=who, timeout=60)
    assert ok.status_code == 202, ok.text
    assert _exportjobs(api) - before == {f"export-{ok.json()['id']}"}
    assert requests.get(api.base + "/healthz", timeout=10).status_code == 200


# --- L7: /metrics on the API port needs an admin token --------------------------------------------


def test_metrics_on_the_api_port_need_an_admin_token(api):
    """Issue 12, L7: /metrics on the API port was open to anyone; its series name every tenant's
    methods, routes and job counts. Without a token (or with a bad or expired one) it is now 401,
    with any non-admin token (even one for every namespace with every permission) 403, and no
    metric reaches either; an admin token gets the Prometheus text."""
    url = api.base + "/metrics"
    expired = issue_token(SECRET, "admin@corp", roles=["admin"], ttl=-60)
    forged = issue_token("another-secret-0123456789abcdef0123456789", "admin@corp", roles=["admin"])
    unauthenticated = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
    ]
    for headers in unauthenticated:
        resp = requests.get(url, headers=headers, timeout=10)
        assert resp.status_code == 401, (headers, resp.status_code)
        assert resp.json() == {"error": "a valid bearer token is required"}
        assert "agentcore_" not in resp.text
    everything = issue_token(SECRET, "operator-of-all@corp", namespaces=["*"], roles=["analyst"])
    non_admins = [
        token("analyst@corp", [api.tenant.namespace]),
        {"Authorization": f"Bearer {everything}"},
    ]
    for headers in non_admins:
        resp = requests.get(url, headers=headers, timeout=10)
        assert resp.status_code == 403, resp.status_code
        assert resp.json() == {"error": "metrics require the admin role"}
        assert "agentcore_" not in resp.text
    admin = requests.get(url, headers=token("admin@corp", [api.tenant.namespace], admin=True), timeout=10)
    assert admin.status_code == 200, admin.text
    assert admin.headers["Content-Type"].startswith("text/plain")
    assert "agentcore_api_http_requests" in admin.text and "# HELP" in admin.text


# --- M7: a large JSON-RPC body does not stall the event loop --------------------------------------


def _stall(api: Api, element: bytes, headers: dict[str, str]) -> tuple[float, float, dict[str, Any]]:
    """(seconds the big request took, longest /healthz wait while it was in flight, its answer)."""
    count = (15 << 20) // (len(element) + 1)
    body = (
        b'{"jsonrpc":"2.0","method":"redteam.no_such_method","params":{"pad":['
        + b",".join([element] * count)
        + b']},"id":"big"}'
    )
    out: dict[str, Any] = {}

    def send() -> None:
        out["start"] = time.monotonic()
        resp = requests.post(
            api.base + RPC, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=300
        )
        out["end"] = time.monotonic()
        out["status"], out["answer"] = resp.status_code, resp.json()

    probes: list[tuple[float, float]] = []
    with requests.Session() as health:
        assert health.get(api.base + "/healthz", timeout=10).status_code == 200  # a warm connection
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        while sender.is_alive():
            began = time.monotonic()
            assert health.get(api.base + "/healthz", timeout=300).status_code == 200
            probes.append((began, time.monotonic()))
            time.sleep(0.01)
        sender.join()
    window = out["end"] - out["start"]
    waits = [end - began for began, end in probes if out["start"] <= began <= out["end"]]
    return window, max(waits, default=window), out


def test_large_jsonrpc_body_does_not_stall_other_callers(api):
    """Issue 12, M7: large JSON-RPC payloads were parsed on the event loop, so one caller's 15 MiB
    body froze every other caller of the API server for the whole parse. Observed from outside:
    while a ~15 MiB body is parsed (answered -32601, so it was parsed whole), /healthz on the same
    server keeps answering, whatever the body holds: floats (whose parser calls back into Python)
    plain integers and strings (parsed entirely in C, holding the GIL, before the parser called back
    into Python for every number and object)."""
    who = token("bulk@corp", [api.tenant.namespace])
    seen = {}
    for shape, element in (("floats", b"0.5"), ("integers", b"1"), ("strings", b'"abcdefgh"')):
        window, stall, out = _stall(api, element, who)
        assert out["status"] == 200, out
        assert out["answer"]["error"]["code"] == -32601, out["answer"]
        seen[shape] = (round(window, 3), round(stall, 3))
    # A stalled loop makes one probe wait about as long as the whole parse.
    slow = {shape: ws for shape, ws in seen.items() if ws[1] > max(0.25, 0.3 * ws[0])}
    assert not slow, (
        "/healthz waited (request seconds, longest /healthz wait) while a 15 MiB JSON-RPC body was "
        f"parsed: {seen}"
    )
