"""Exports end to end on the real stack: REST (real HTTP, real JWTs) → ExportJob on the kube-apiserver
→ operator → export pod on the node agent → PostgreSQL → MinIO → presigned URL → real readers.

Every export is requested at module start, across several namespaces (tenants, each with its own
queue of 3), so the pods run in parallel while the tests wait for and check their own results.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import openpyxl
import pypdf
import pytest
import requests
import yaml
from aiohttp import web
from sqlalchemy import insert, text

from agentcore.auth.tokens import TokenVerifier, issue_token
from agentcore.devenv.procs import free_port
from agentcore.kube import config as kubeconfig
from agentcore.kube.client import KubeClient
from agentcore.server.rest.exports import ExportDeps, add_export_routes, bearer_authenticator
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.objectstore import S3ObjectStore
from agentcore.storage.tables import AuditEntry
from agentcore.storage.trajectories import TrajectoryRepository
from tests.conftest import REPO, get_json, wait_for
from tests.exports_support import (
    PII_ACTOR,
    PII_AGENT,
    audit_rows,
    leaked,
    read_rows,
    trajectory_rows,
)
from tests.integration.controllers.test_trainingjob import OperatorProcess, _migrate, add_queries
from tests.openapi_support import check_response

pytestmark = pytest.mark.integration


def _conforms(resp: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Every answer of the REST API in this suite matches the OpenAPI document it serves."""
    check_response(resp.request.method or "GET", urlsplit(resp.url).path, resp.status_code, resp.content)


class _Checked:
    """requests' get/post/delete with the conformance hook (no shared Session: threads use it)."""

    def __getattr__(self, verb: str) -> Any:
        def call(url: str, **kwargs: Any) -> requests.Response:
            return requests.request(verb.upper(), url, hooks={"response": _conforms}, **kwargs)

        return call


REST = _Checked()
SECRET = "integration-secret-0123456789abcdef0123456789"
BIG_ROWS = 200_000


class RestServer:
    """The Exports API on a real TCP port, in its own thread and event loop."""

    def __init__(self, cp, postgres, s3, bucket: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1/exports"
        self._args = (cp, postgres, s3, bucket)
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "REST server did not start"

    async def _start(self) -> None:
        cp, postgres, s3, bucket = self._args
        creds = s3.credentials
        self.engine = make_engine(postgres.dsn)
        self.kube = KubeClient(kubeconfig.load(cp.kubeconfig))
        store = S3ObjectStore(
            bucket,
            "agentcore",
            endpoint_url=creds.endpoint_url,
            access_key=creds.access_key,
            secret_key=creds.secret_key,
        )
        deps = ExportDeps(
            kube=self.kube,
            authenticate=bearer_authenticator(TokenVerifier(SECRET).verify),
            store=store,
            engine=self.engine,
        )
        app = web.Application()
        add_export_routes(app, deps)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def _serve(self) -> None:
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def close() -> None:
            await self.runner.cleanup()
            await self.kube.close()
            await self.engine.dispose()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def token(sub: str, namespaces: list[str], admin: bool = False) -> dict[str, str]:
    roles = ["admin"] if admin else ["analyst"]
    perms = ["data:export", "training:view"]
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, perms, namespaces, roles)}"}


@dataclass
class Tenant:
    namespace: str
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Requested:
    tenant: Tenant
    label: str
    body: dict[str, Any]
    headers: dict[str, str]
    id: str = ""
    created: dict[str, Any] = field(default_factory=dict)


class Scenario:
    def __init__(self, cp, rest: RestServer, operator: OperatorProcess) -> None:
        self.cp, self.rest, self.operator = cp, rest, operator
        self.requested: dict[str, Requested] = {}

    def create(
        self, label: str, tenant: Tenant, export_type: str, fmt: str, level: str, who: dict, **extra
    ) -> None:
        config = {"format": fmt, "privacy_level": level, **extra.pop("config", {})}
        body = {
            "project_id": tenant.namespace,
            "name": f"{label} export",
            "export_type": export_type,
            "config": config,
        }
        body.update(extra)
        resp = REST.post(self.rest.url, json=body, headers=who, timeout=30)
        assert resp.status_code == 202, resp.text
        req = Requested(tenant, label, body, who, resp.json()["id"], resp.json())
        self.requested[label] = req

    def get(self, label: str) -> dict[str, Any]:
        req = self.requested[label]
        resp = REST.get(f"{self.rest.url}/{req.id}", headers=req.headers, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def finished(self, label: str, timeout: float = 150) -> dict[str, Any]:
        def done():
            out = self.get(label)
            return out if out["status"] in ("completed", "failed", "cancelled") else None

        return wait_for(done, timeout, interval=0.5, what=f"export {label} to finish")

    def download(self, label: str) -> tuple[bytes, dict[str, Any], requests.Response]:
        out = self.finished(label)
        assert out["status"] == "completed", out
        req = self.requested[label]
        link = REST.get(f"{self.rest.url}/{req.id}/download", headers=req.headers, timeout=30)
        assert link.status_code == 200, link.text
        info = link.json()
        data = REST.get(info["download_url"], timeout=30)
        assert data.status_code == 200, data.text
        return data.content, info, data


# --- setup -------------------------------------------------------------------------------------------


def _namespace(cp, prefix: str) -> Tenant:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cp.kubectl("create", "namespace", name)
    wait_for(
        lambda: cp.kubectl("-n", name, "get", "sa", "default", check=False).returncode == 0,
        30,
        what=f"default service account in {name}",
    )
    return Tenant(name)


async def _seed(dsn: str, tenants: list[Tenant], big: Tenant) -> None:
    engine = make_engine(dsn)
    repo = TrajectoryRepository(session_factory(engine))
    for tenant in tenants:
        await repo.add_batch(trajectory_rows(tenant.namespace, tenant.job_id, "job-one"))
        async with engine.begin() as conn:
            await conn.execute(insert(AuditEntry).values(audit_rows(tenant.namespace)))
    # A large table for the slow exports that are cancelled while running.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into trajectories (id, job_id, job_name, namespace, agent_id, iteration, group_index,"
                " sample_index, query, steps, reward, normalized_reward, advantage, success,"
                " execution_time_ms, error, created_at)"
                " select md5(:ns || g::text), :job, 'big-job', :ns, 'agent-big', g / 100, (g % 100) / 4,"
                ' g % 4, \'query number \' || g, cast(\'[{"action": {"tool": "search"}}]\' as json),'
                " (g % 97) / 97.0, 0, 0, g % 3 = 0, g % 1000, null,"
                " timestamptz '2026-01-01' + g * interval '1 second'"
                " from generate_series(1, :n) as g"
            ),
            {"ns": big.namespace, "job": big.job_id, "n": BIG_ROWS},
        )
    await engine.dispose()


def _trainingjobs(cp, tenant: Tenant) -> None:
    """A suspended TrainingJob with a trainer's status, and one that failed validation."""
    add_queries(cp, tenant.namespace)
    for name, data in (
        ("tj-ok", {"configMapKeyRef": {"name": "queries", "key": "queries.json"}}),
        ("tj-broken", {"configMapKeyRef": {"name": "missing", "key": "q.json"}}),
    ):
        manifest = {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": name},
            "spec": {
                "agentId": PII_AGENT,
                "config": {"nIterations": 12},
                "trainingData": data,
                "suspend": True,
            },
        }
        cp.kubectl("-n", tenant.namespace, "apply", "-f", "-", input=yaml.safe_dump(manifest))
    wait_for(
        lambda: (
            (get_json(cp, "-n", tenant.namespace, "get", "tj", "tj-broken").get("status") or {}).get("phase")
            == "Failed"
        ),
        60,
        what="tj-broken to fail validation",
    )
    status = {
        "status": {
            "costUsd": "2.50",
            "currentIteration": 12,
            "metrics": {"avgReward": 0.6, "successRate": 0.7},
        }
    }
    cp.kubectl(
        "-n",
        tenant.namespace,
        "patch",
        "tj",
        "tj-ok",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )


@pytest.fixture(scope="module")
def stack(control_plane, node_agent, crds_installed, postgres, s3, tmp_path_factory):
    asyncio.run(_migrate(postgres.dsn))
    op = OperatorProcess(control_plane, postgres, s3, tmp_path_factory.mktemp("operator"))
    op.env["AGENTCORE_EXPORT_SWEEP_SECONDS"] = "2"
    op.start()
    rest = RestServer(control_plane, postgres, s3, op.bucket)
    tenants = {p: _namespace(control_plane, p) for p in ("fmt", "leak-a", "leak-b", "queue", "expiry")}
    asyncio.run(
        _seed(postgres.dsn, [tenants[p] for p in ("fmt", "leak-a", "leak-b", "expiry")], tenants["queue"])
    )
    _trainingjobs(control_plane, tenants["fmt"])
    scenario = Scenario(control_plane, rest, op)
    scenario.tenants = tenants  # type: ignore[attr-defined]
    scenario.s3 = s3  # type: ignore[attr-defined]
    _request_everything(scenario, tenants)
    yield scenario
    rest.stop()
    op.stop()
    for tenant in tenants.values():
        control_plane.kubectl("delete", "namespace", tenant.namespace, "--wait=false", check=False)


def _request_everything(sc: Scenario, t: dict[str, Tenant]) -> None:
    fmt, la, lb, q = t["fmt"], t["leak-a"], t["leak-b"], t["queue"]
    admin = token("admin@corp", [fmt.namespace, q.namespace], admin=True)
    analyst = token(
        PII_ACTOR, [fmt.namespace, la.namespace, lb.namespace, q.namespace, t["expiry"].namespace]
    )
    sc.analyst = analyst  # type: ignore[attr-defined]
    # Three slow exports fill the queue tenant's slots; a fourth has to wait.
    for i in range(3):
        sc.create(f"slow-{i}", q, "trajectories", "excel", "full", admin)
    sc.create("queued", q, "trajectories", "csv", "anonymized", analyst)
    # One of each format (six exports in one tenant with the kubectl one: three wait their turn).
    sc.create("json", fmt, "trajectories", "json", "full", admin)
    sc.create("csv", fmt, "trajectories", "csv", "anonymized", analyst)
    sc.create("parquet", fmt, "telemetry_dump", "parquet", "full", admin, config={"telemetry_resolution": 3})
    sc.create(
        "excel",
        fmt,
        "project_summary",
        "excel",
        "anonymized",
        analyst,
        config={"include_telemetry": True, "include_reliability": True},
    )
    sc.create("pdf", fmt, "reliability_report", "pdf", "anonymized", analyst)
    sc.cp.kubectl("-n", fmt.namespace, "apply", "-f", str(REPO / "examples" / "exportjob.yaml"))
    # Leak checks: the same planted PII in two tenants, hence under two keys.
    sc.create("anon-csv", la, "trajectories", "csv", "anonymized", analyst)
    sc.create("anon-parquet", la, "trajectories", "parquet", "anonymized", analyst)
    sc.create("agg-json", la, "trajectories", "json", "aggregated", analyst, config={"k_anonymity": 8})
    sc.create("summary-pdf", la, "trajectories", "pdf", "summary", analyst)
    sc.create("audit-excel", la, "audit_log", "excel", "anonymized", analyst)
    sc.create("other-tenant", lb, "trajectories", "csv", "anonymized", analyst)


# --- tests -------------------------------------------------------------------------------------------


def _phase(stack, label: str) -> str:
    return stack.get(label)["status"]


def test_cancel_pending_cancel_running_and_delete(stack):
    ns = stack.tenants["queue"].namespace
    queued = stack.get("queued")
    assert queued["status"] == "pending" and queued["position_in_queue"] == 0
    assert stack.requested["queued"].created["position_in_queue"] == 0
    req = stack.requested["queued"]
    resp = REST.post(f"{stack.rest.url}/{req.id}/cancel", headers=req.headers, timeout=30)
    assert resp.json() == {"id": req.id, "status": "cancelled", "message": "Export cancelled successfully"}
    assert stack.finished("queued")["status"] == "cancelled"
    for where in (ns, "default"):  # the tenant's namespace and the (test operator's) platform one
        jobs = get_json(
            stack.cp, "-n", where, "get", "jobs", "-l", f"training.agentcore.io/export-id={req.id}"
        )
        assert jobs["items"] == []  # never admitted, never ran

    wait_for(lambda: _phase(stack, "slow-0") == "running", 120, interval=0.3, what="slow-0 running")
    slow = stack.requested["slow-0"]
    REST.post(
        f"{stack.rest.url}/{slow.id}/cancel", headers=slow.headers, json={"reason": "too slow"}, timeout=30
    )
    out = stack.finished("slow-0", timeout=90)
    assert out["status"] == "cancelled" and out["error"] == "cancelled: too slow" and "output" not in out
    pods = get_json(
        stack.cp, "-n", ns, "get", "pods", "-l", f"training.agentcore.io/exportjob=export-{slow.id}"
    )["items"]
    assert all(p["status"]["phase"] != "Running" or p["metadata"].get("deletionTimestamp") for p in pods)
    again = REST.post(f"{stack.rest.url}/{slow.id}/cancel", headers=slow.headers, timeout=30)
    assert again.status_code == 409

    for label in ("slow-1", "slow-2"):
        req = stack.requested[label]
        assert REST.delete(f"{stack.rest.url}/{req.id}", headers=req.headers, timeout=30).status_code == 204
        assert REST.get(f"{stack.rest.url}/{req.id}", headers=req.headers, timeout=30).status_code == 404
    wait_for(
        lambda: (
            not stack.s3.client()
            .list_objects_v2(Bucket=stack.operator.bucket, Prefix=f"agentcore/exports/{ns}/")
            .get("Contents")
        ),
        30,
        what="no files left for cancelled or deleted exports",
    )


def test_json_full_trajectories(stack):
    data, info, resp = stack.download("json")
    rows = read_rows("json", data)
    assert len(rows) == 96 and info["content_type"] == "application/json"
    assert info["file_name"] == "json_export.json"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="json_export.json"'
    assert rows[0]["agent_id"] == PII_AGENT and "SSN" in rows[0]["query"]
    assert isinstance(rows[0]["steps"], list) and rows[0]["created_at"].endswith("Z")
    out = stack.get("json")
    assert out["output"]["row_count"] == 96 and out["output"]["file_size_bytes"] == len(data)
    assert out["redaction_applied"] == {"fields_redacted": [], "rows_filtered": 0}
    assert out["created_by"] == "admin@corp"


def _key(stack, tenant: Tenant) -> bytes:
    secret = get_json(stack.cp, "-n", tenant.namespace, "get", "secret", "agentcore-export-key")
    key = base64.b64decode(secret["data"]["key"])
    assert len(key) == 32
    return key


def _pseudonym(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def test_csv_anonymized_trajectories(stack):
    data, info, _ = stack.download("csv")
    rows = read_rows("csv", data)
    assert len(rows) == 96 and info["content_type"] == "text/csv"
    assert "query" not in rows[0] and "steps" not in rows[0]
    tenant = stack.requested["csv"].tenant
    assert {r["agent_id"] for r in rows} == {_pseudonym(_key(stack, tenant), PII_AGENT)}
    assert leaked("csv", data) == []
    fields = stack.get("csv")["redaction_applied"]["fields_redacted"]
    assert {"agent.id", "trajectory.query", "trajectory.steps", "trajectory.error"} <= set(fields)


def test_parquet_telemetry(stack):
    import pyarrow.parquet as pq

    data, info, _ = stack.download("parquet")
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("avg_reward").type) == "double"
    rows = table.to_pylist()
    assert [(r["iteration_start"], r["iteration_end"], r["trajectories"]) for r in rows] == [
        (0, 2, 24),
        (3, 5, 24),
        (6, 8, 24),
        (9, 11, 24),
    ]
    assert info["content_type"] == "application/octet-stream" and info["file_name"].endswith(".parquet")


def test_excel_project_summary(stack):
    data, info, _ = stack.download("excel")
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames[0] == "Summary"
    sheet = book[book.sheetnames[1]]
    header, *rows = list(sheet.iter_rows(values_only=True))
    jobs = {r[header.index("job_name")]: dict(zip(header, r, strict=True)) for r in rows}
    # Job names are built from agent ids: below `full` they are pseudonyms too.
    key = _key(stack, stack.requested["excel"].tenant)
    ok, broken = _pseudonym(key, "tj-ok"), _pseudonym(key, "tj-broken")
    assert set(jobs) == {ok, broken}
    assert jobs[ok]["cost_usd"] == 2.5 and jobs[ok]["avg_reward"] == 0.6
    assert jobs[broken]["phase"] == "Failed"
    assert jobs[ok]["agent_id"] != PII_AGENT and len(jobs[ok]["agent_id"]) == 32
    assert "trajectories_stored" in header and "p_value" in header
    assert info["file_name"] == "excel_export.xlsx"
    assert leaked("excel", data, (PII_AGENT,)) == []


def test_pdf_reliability_report(stack):
    data, info, _ = stack.download("pdf")
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "pdf export" in text and "Export details" in text
    assert "reliability_report" in text and "Trajectory error rate per job" in text
    assert "tj-broken" not in text and "ValidationFailed" in text  # job names are pseudonyms here
    assert info["content_type"] == "application/pdf"


def test_kubectl_apply_works_too(stack):
    """The same resource without the REST API: kubectl apply of examples/exportjob.yaml."""
    ns = stack.tenants["fmt"].namespace

    def done():
        # The exporter writes the phase; the operator's next pass adds the condition (and its
        # Event, from the condition's flip): wait for both (CI once read between the two).
        obj = get_json(stack.cp, "-n", ns, "get", "exportjob", "tool-agent-trajectories")
        status = obj.get("status") or {}
        kinds = {c["type"] for c in status.get("conditions") or [] if c["status"] == "True"}
        return obj if status.get("phase") == "Failed" or {"Complete"} <= kinds else None

    obj = wait_for(done, 150, interval=1, what="the example ExportJob")
    status = obj["status"]
    assert status["phase"] == "Completed", status
    assert status["exportId"] == obj["metadata"]["uid"] and status["output"]["rowCount"] == 0
    assert status["output"]["fileName"] == "Tool_agent_trajectories.csv"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Admitted"] == "True" and conditions["Complete"] == "True"


def test_a_name_longer_than_a_label_value_completes(stack):
    """Red team (issue 12): the ExportJob's name went raw into its children's labels, so a name over
    63 characters made the Job invalid and the export hung; Jobs are now matched by owner."""
    ns = _namespace(stack.cp, "long").namespace  # its own: the other tests count their exports
    manifest = yaml.safe_load((REPO / "examples" / "exportjob.yaml").read_text())
    name = "tool-agent-trajectories-" + "x" * 80
    manifest["metadata"]["name"] = name
    stack.cp.kubectl("-n", ns, "apply", "-f", "-", input=yaml.safe_dump(manifest))

    def done():
        obj = get_json(stack.cp, "-n", ns, "get", "exportjob", name)
        return obj if (obj.get("status") or {}).get("phase") in ("Completed", "Failed") else None

    assert wait_for(done, 150, interval=1, what="the long-named ExportJob")["status"]["phase"] == "Completed"
    stack.cp.kubectl("delete", "namespace", ns, "--wait=false")


def _events(stack, ns: str) -> list[dict]:
    return get_json(stack.cp, "-n", ns, "get", "events")["items"]


def test_at_most_three_exports_per_tenant(stack):
    ns = stack.tenants["fmt"].namespace
    for label in ("json", "csv", "parquet", "excel", "pdf"):
        stack.finished(label)
    exportjobs = get_json(stack.cp, "-n", ns, "get", "exportjobs")["items"]
    done_at = {ej["metadata"]["name"]: ej["status"]["timing"]["completedAt"] for ej in exportjobs}
    # The export Jobs run in the platform namespace ("default" for the test operator), labelled
    # with their ExportJob's namespace.
    selector = f"training.agentcore.io/exportjob,training.agentcore.io/exportjob-namespace={ns}"
    jobs = get_json(stack.cp, "-n", "default", "get", "jobs", "-l", selector)["items"]
    assert get_json(stack.cp, "-n", ns, "get", "jobs", "-l", "training.agentcore.io/exportjob")["items"] == []
    started = sorted(
        (j["metadata"]["creationTimestamp"], j["metadata"]["labels"]["training.agentcore.io/exportjob"])
        for j in jobs
    )
    assert len(started) == 6
    for created, _ in started:
        live = [name for c, name in started if c <= created and done_at[name] > created]
        assert len(live) <= 3, (created, live)
    reasons = [e["reason"] for e in _events(stack, ns) if e["involvedObject"]["kind"] == "ExportJob"]
    assert reasons.count("Queued") >= 1 and reasons.count("Completed") == 6


def test_pseudonymisation_key_secret_and_pod_rbac(stack):
    ns = stack.tenants["fmt"].namespace
    name = f"export-{stack.requested['pdf'].id}-export"
    role = get_json(stack.cp, "-n", ns, "get", "role", name)
    resources = {(r["apiGroups"][0], r["resources"][0], tuple(r["verbs"])) for r in role["rules"]}
    assert resources == {
        ("training.agentcore.io", "exportjobs", ("get",)),
        ("training.agentcore.io", "exportjobs/status", ("get", "patch")),
        ("training.agentcore.io", "trainingjobs", ("list",)),
        ("batch", "jobs", ("list",)),
        ("", "secrets", ("get",)),
    }
    # Bound to the export pod's ServiceAccount in the platform namespace, not one in the tenant's.
    subject = get_json(stack.cp, "-n", ns, "get", "rolebinding", name)["subjects"][0]
    assert subject["namespace"] == "default" != ns  # the test operator's platform namespace
    account = f"system:serviceaccount:{subject['namespace']}:{subject['name']}"

    def can_i(*what: str) -> str:
        return stack.cp.kubectl(
            "-n", ns, "auth", "can-i", *what, f"--as={account}", check=False
        ).stdout.strip()

    assert can_i("patch", f"exportjobs/export-{stack.requested['pdf'].id}", "--subresource=status") == "yes"
    assert can_i("patch", "exportjobs/status") == "no"  # only its own ExportJob, by name
    _key(stack, stack.tenants["fmt"])


def test_no_pii_in_protected_exports_and_stable_pseudonyms(stack):
    for label, fmt in (
        ("anon-csv", "csv"),
        ("anon-parquet", "parquet"),
        ("agg-json", "json"),
        ("summary-pdf", "pdf"),
        ("audit-excel", "excel"),
        ("other-tenant", "csv"),
    ):
        data, _, _ = stack.download(label)
        assert leaked(fmt, data) == [], label
    csv_rows = read_rows("csv", stack.download("anon-csv")[0])
    parquet_rows = read_rows("parquet", stack.download("anon-parquet")[0])
    other_rows = read_rows("csv", stack.download("other-tenant")[0])
    same_key = {r["agent_id"] for r in csv_rows}
    assert same_key == {r["agent_id"] for r in parquet_rows}  # stable within a tenant
    assert same_key.isdisjoint({r["agent_id"] for r in other_rows})  # differs across tenant keys
    assert same_key == {_pseudonym(_key(stack, stack.tenants["leak-a"]), PII_AGENT)}
    aggregated = read_rows("json", stack.download("agg-json")[0])
    # k counts distinct agents (one here), so every group is suppressed; none names a job or agent.
    assert all(r["agents"] >= 8 and "agent_id" not in r and "job_name" not in r for r in aggregated)
    assert stack.get("agg-json")["redaction_applied"]["rows_filtered"] >= 1
    book = openpyxl.load_workbook(io.BytesIO(stack.download("audit-excel")[0]), read_only=True)
    header, *rows = list(book[book.sheetnames[1]].iter_rows(values_only=True))
    actors = {r[header.index("actor")] for r in rows}
    assert _pseudonym(_key(stack, stack.tenants["leak-a"]), PII_ACTOR) in actors
    assert "source_ip" in header and {r[header.index("source_ip")] for r in rows} == {"[IP REDACTED]"}


def test_presigned_url_expires_and_expired_exports_are_cleaned(stack):
    tenant = stack.tenants["expiry"]
    stack.create(
        "expiring", tenant, "trajectories", "json", "anonymized", stack.analyst, retention_seconds=15
    )
    data, info, _ = stack.download("expiring")
    assert len(read_rows("json", data)) == 96
    url_expires = dt.datetime.fromisoformat(info["expires_at"].replace("Z", "+00:00"))
    file_expires = dt.datetime.fromisoformat(
        stack.get("expiring")["output"]["expires_at"].replace("Z", "+00:00")
    )
    assert url_expires <= file_expires  # the URL never outlives the file
    time.sleep(max(0.0, (url_expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
    expired = REST.get(info["download_url"], timeout=30)
    assert expired.status_code == 403 and "expired" in expired.text.lower()
    req = stack.requested["expiring"]
    ns = req.tenant.namespace
    wait_for(
        lambda: (
            stack.cp.kubectl("-n", ns, "get", "exportjob", f"export-{req.id}", check=False).returncode != 0
        ),
        30,
        what="the expired ExportJob to be deleted",
    )
    listing = stack.s3.client().list_objects_v2(
        Bucket=stack.operator.bucket, Prefix=f"agentcore/exports/{ns}/"
    )
    assert not listing.get("Contents")
    assert REST.get(f"{stack.rest.url}/{req.id}", headers=req.headers, timeout=30).status_code == 404
