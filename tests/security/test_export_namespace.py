"""Export pods run where tenants cannot reach them: the platform namespace.

A tenant with kubectl in its own namespace could read a Secret there, or exec into or replace a pod.
So the exporter's Job, pod, ServiceAccount and credentials (the platform's database URL and password,
the object-store keys) live in the platform namespace; only the ExportJob and its Role/RoleBinding
stay with the tenant. On the real stack: apiserver, operator process, node agent, PostgreSQL, MinIO.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.trajectories import TrajectoryRepository
from tests.conftest import get_json, wait_for
from tests.exports_support import trajectory_rows
from tests.integration.controllers.test_trainingjob import _migrate
from tests.integration.exports.test_exports import RestServer, Scenario, _namespace, token
from tests.operator_support import OperatorProcess

pytestmark = pytest.mark.integration
UID_LABEL = "training.agentcore.io/exportjob-uid"
NS_LABEL = "training.agentcore.io/exportjob-namespace"


def _secret_values(postgres, s3) -> list[str]:
    creds = s3.credentials
    password = urlsplit(postgres.dsn).password or ""
    return [v for v in (postgres.dsn, password, creds.access_key, creds.secret_key) if v]


class Observer:
    """Snapshots the tenant namespace's Secrets, ConfigMaps and pods (and the platform's pods)
    every few tenths of a second, as a tenant with kubectl could."""

    def __init__(self, cp, tenant: str, platform: str) -> None:
        self.cp, self.tenant, self.platform = cp, tenant, platform
        self.tenant_dumps: list[tuple[str, str]] = []  # (kind/name, everything kubectl shows)
        self.tenant_pods: set[str] = set()
        self.platform_pods: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def snapshot(self) -> None:
        for kind in ("secrets", "configmaps", "pods"):
            listing = get_json(self.cp, "-n", self.tenant, "get", kind)
            for item in listing.get("items", []):
                if kind == "secrets":  # by value: decode what kubectl shows base64-encoded
                    decoded = {
                        k: base64.b64decode(v).decode(errors="replace")
                        for k, v in (item.get("data") or {}).items()
                    }
                    item = {**item, "decoded": decoded}
                if kind == "pods":
                    self.tenant_pods.add(item["metadata"]["name"])
                self.tenant_dumps.append((f"{kind}/{item['metadata']['name']}", json.dumps(item)))
        pods = get_json(self.cp, "-n", self.platform, "get", "pods", "-l", NS_LABEL)
        self.platform_pods += pods.get("items", [])

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            self.snapshot()

    def __enter__(self) -> Observer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.snapshot()


async def _seed(dsn: str, namespace: str) -> None:
    engine = make_engine(dsn)
    await TrajectoryRepository(session_factory(engine)).add_batch(
        trajectory_rows(namespace, str(uuid.uuid4()), "job-one", iterations=2)
    )
    await engine.dispose()


@pytest.fixture(scope="module")
def platform_stack(control_plane, node_agent, crds_installed, postgres, s3, tmp_path_factory):
    asyncio.run(_migrate(postgres.dsn))
    platform = _namespace(control_plane, "platform").namespace
    tenant = _namespace(control_plane, "tenant")
    asyncio.run(_seed(postgres.dsn, tenant.namespace))
    op = OperatorProcess(control_plane, postgres, s3, tmp_path_factory.mktemp("operator"))
    op.env["AGENTCORE_EXPORT_SWEEP_SECONDS"] = "2"
    op.env["AGENTCORE_PLATFORM_NAMESPACE"] = platform
    op.start()
    previous = os.environ.get("AGENTCORE_PLATFORM_NAMESPACE")
    os.environ["AGENTCORE_PLATFORM_NAMESPACE"] = platform  # the REST API's queue counts Jobs there
    try:
        rest = RestServer(control_plane, postgres, s3, op.bucket)
    finally:
        if previous is None:
            os.environ.pop("AGENTCORE_PLATFORM_NAMESPACE")
        else:
            os.environ["AGENTCORE_PLATFORM_NAMESPACE"] = previous
    sc = Scenario(control_plane, rest, op)
    sc.platform, sc.tenant = platform, tenant  # type: ignore[attr-defined]
    sc.headers = token("admin@corp", [tenant.namespace], admin=True)  # type: ignore[attr-defined]
    yield sc
    rest.stop()
    op.stop()
    for ns in (platform, tenant.namespace):
        control_plane.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _platform_objects(sc, uid: str) -> list[str]:
    found = []
    for kind in ("jobs", "secrets", "serviceaccounts", "pods"):
        listing = get_json(sc.cp, "-n", sc.platform, "get", kind, "-l", f"{UID_LABEL}={uid}")
        found += [f"{kind}/{i['metadata']['name']}" for i in listing.get("items", [])]
    return found


def _exportjob(sc, label: str) -> dict[str, Any]:
    name = f"export-{sc.requested[label].id}"
    return get_json(sc.cp, "-n", sc.tenant.namespace, "get", "exportjob", name)


def test_no_platform_credentials_in_the_tenant_namespace(platform_stack, postgres, s3):
    sc = platform_stack
    with Observer(sc.cp, sc.tenant.namespace, sc.platform) as seen:
        sc.create("json", sc.tenant, "trajectories", "json", "full", sc.headers)
        content, _, _ = sc.download("json")
    assert content  # the file downloads
    for value in _secret_values(postgres, s3):
        leaks = sorted({where for where, dump in seen.tenant_dumps if value in dump})  # not the value
        assert not leaks, f"a platform credential is readable in the tenant namespace: {leaks}"
    assert not seen.tenant_pods, f"pods ran in the tenant namespace: {seen.tenant_pods}"
    ej = _exportjob(sc, "json")
    uid = ej["metadata"]["uid"]
    # The exporter ran in the platform namespace, labelled with its ExportJob.
    ran = [p for p in seen.platform_pods if p["metadata"]["labels"].get(UID_LABEL) == uid]
    assert ran, "no exporter pod seen in the platform namespace"
    assert {p["metadata"]["labels"][NS_LABEL] for p in ran} == {sc.tenant.namespace}
    # Nothing of the export's but its Role and RoleBinding (owned by the ExportJob) in the tenant's.
    for kind in ("jobs", "serviceaccounts"):
        names = [
            i["metadata"]["name"] for i in get_json(sc.cp, "-n", sc.tenant.namespace, "get", kind)["items"]
        ]
        assert [n for n in names if n != "default"] == [], (kind, names)
    assert _platform_objects(sc, uid)  # the Job, Secret and ServiceAccount are there until deletion
    sc.cp.kubectl("-n", sc.tenant.namespace, "delete", "exportjob", ej["metadata"]["name"])
    wait_for(lambda: not _platform_objects(sc, uid), 60, what="platform objects deleted with the ExportJob")


def test_an_exportjob_deleted_while_the_operator_is_down_is_cleaned_up(platform_stack):
    sc = platform_stack
    sc.create("later", sc.tenant, "trajectories", "json", "full", sc.headers)
    assert sc.finished("later")["status"] == "completed"
    ej = _exportjob(sc, "later")
    uid = ej["metadata"]["uid"]
    assert _platform_objects(sc, uid)
    sc.operator.stop()
    try:
        sc.cp.kubectl("-n", sc.tenant.namespace, "delete", "exportjob", ej["metadata"]["name"])
        assert _platform_objects(sc, uid)  # nobody deleted them: no owner reference crosses namespaces
    finally:
        sc.operator.start()
    wait_for(lambda: not _platform_objects(sc, uid), 90, what="the sweep to delete orphaned platform objects")
