"""Red team (issue 12) against the real stack: an `agentcore api` process on a real TCP port, the real
kube-apiserver, operator process, node agent (export pods), PostgreSQL and MinIO.

- H4: an export's `status.output.fileRef` is written by whoever may patch the ExportJob's status (the
  exporter's service account); the API server's download and delete and the operator's expiry sweep
  use only the export's own object, exports/<namespace>/<export id>/<file>, never what the status
  names. The admin kubeconfig's `kubectl patch --subresource=status` stands in for a compromised
  exporter service account.
- L8: the verified-token cache honours revocation: a key removed from the JWKS file stops its tokens,
  cached or not, within the verifier's reload interval.

The API server, its operator and the tenant with data are test_redteam_api's `api` fixture; the
operator here sweeps expired exports every 2 seconds (the default is a minute).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from agentcore.auth.tokens import EXPORT, VIEW, TokenVerifier
from tests.conftest import get_json, wait_for
from tests.integration.controllers.test_trainingjob import _migrate
from tests.integration.exports.test_exports import REST, Tenant, _namespace, token
from tests.operator_support import OperatorProcess
from tests.security.test_export_namespace import _seed
from tests.security.test_redteam_api import (  # noqa: F401  (the api fixture)
    EXPORTS,
    RPC,
    Api,
    _serve,
    api,
)
from tests.unit.server.jsonrpc.test_auth import rs256

pytestmark = pytest.mark.integration
SWEEP_SECONDS = 2


@pytest.fixture(scope="module")
def operator(control_plane, node_agent, crds_installed, postgres, s3, tmp_path_factory):
    """The operator `api` runs with (this module's, overriding the suite's): a 2-second expiry sweep."""
    op = OperatorProcess(control_plane, postgres, s3, tmp_path_factory.mktemp("operator"))
    op.env["AGENTCORE_EXPORT_SWEEP_SECONDS"] = str(SWEEP_SECONDS)
    asyncio.run(_migrate(postgres.dsn))
    op.start()
    yield op
    op.stop()


# --- H4: status.output.fileRef is not trusted -------------------------------------------------------


@dataclass
class Exports:
    api: Api
    bucket: str
    victim: Tenant
    victim_ref: str  # the victim export's status.output.fileRef (s3://bucket/agentcore/exports/...)
    victim_key: str  # its key in the bucket
    victim_name: str
    victim_data: bytes
    own: dict[str, bytes] = field(default_factory=dict)  # the attacker's exports' own files

    def exportjob(self, label: str) -> str:
        return f"export-{self.api.scenario.requested[label].id}"


ATTACKER_LABELS = ("a-download", "a-delete", "a-expire")


@pytest.fixture(scope="module")
def exports(api, postgres) -> Iterator[Exports]:  # noqa: F811  (the imported fixture)
    """Another tenant's completed `full` export (raw data) and three completed exports of the
    attacker's tenant (api.tenant), all requested at once so their pods run side by side."""
    sc = api.scenario
    victim = _namespace(sc.cp, "redteam-victim")
    asyncio.run(_seed(postgres.dsn, victim.namespace))
    try:
        owner = token("admin@victim", [victim.namespace], admin=True)
        sc.create("victim", victim, "trajectories", "json", "full", owner)
        attacker = token("attacker@corp", [api.tenant.namespace])
        for label in ATTACKER_LABELS:
            sc.create(label, api.tenant, "trajectories", "csv", "anonymized", attacker)
        victim_data, info, _ = sc.download("victim")
        name = f"export-{sc.requested['victim'].id}"
        ref = get_json(sc.cp, "-n", victim.namespace, "get", "exportjob", name)["status"]["output"]["fileRef"]
        bucket = sc.operator.bucket
        assert ref.startswith(f"s3://{bucket}/agentcore/exports/{victim.namespace}/"), ref
        found = Exports(
            api, bucket, victim, ref, ref.removeprefix(f"s3://{bucket}/"), info["file_name"], victim_data
        )
        for label in ATTACKER_LABELS:
            found.own[label] = sc.download(label)[0]
        assert all(data != victim_data for data in found.own.values())
        yield found
    finally:
        sc.cp.kubectl("delete", "namespace", victim.namespace, "--wait=false", check=False)


def _patch_status(ex: Exports, label: str, output: dict[str, Any]) -> dict[str, Any]:
    """What a compromised exporter service account can do: rewrite its ExportJob's status."""
    patch = json.dumps({"status": {"output": output}})
    out = ex.api.scenario.cp.kubectl(
        "-n", ex.api.tenant.namespace, "patch", "exportjob", ex.exportjob(label),
        "--subresource=status", "--type=merge", "-p", patch, "-o", "json",
    )  # fmt: skip
    patched = json.loads(out.stdout)["status"]["output"]
    assert {k: patched[k] for k in output} == output, patched  # the apiserver took it
    return patched


def _aim_at_victim(ex: Exports, label: str, **extra: str) -> None:
    _patch_status(ex, label, {"fileRef": ex.victim_ref, "fileName": ex.victim_name, **extra})
    # The API server reads the patched status (it lists ExportJobs from the apiserver).
    got = ex.api.scenario.get(label)
    assert got["status"] == "completed" and got["output"]["file_ref"] == ex.victim_ref, got


def _victim_object(ex: Exports, s3) -> bytes:
    """The victim's file, read from MinIO directly."""
    try:
        return s3.client().get_object(Bucket=ex.bucket, Key=ex.victim_key)["Body"].read()
    except ClientError as exc:
        raise AssertionError(f"the other tenant's object {ex.victim_key} is gone from MinIO: {exc}") from None


def _victim_is_intact(ex: Exports, s3) -> None:
    assert _victim_object(ex, s3) == ex.victim_data, "the other tenant's export file changed"
    data, _, _ = ex.api.scenario.download("victim")  # and its owner still downloads it
    assert data == ex.victim_data


def test_a_patched_file_ref_does_not_download_another_tenants_file(exports, s3):
    """Issue 12, H4: `status.output.fileRef` was trusted. With its ExportJob's status pointed at
    another tenant's `full` export (fileRef and fileName), the REST download of the attacker's own
    export must not hand out a URL to that object: it serves the export's own file or fails
    (503 DOWNLOAD_UNAVAILABLE); nothing the answer or its URL yields is the other tenant's file."""
    ex, label = exports, "a-download"
    assert _victim_object(ex, s3) == ex.victim_data  # the target is there to be taken
    _aim_at_victim(ex, label)
    req = ex.api.scenario.requested[label]
    resp = REST.get(f"{ex.api.url}/{req.id}/download", headers=req.headers, timeout=30)
    assert ex.victim_key not in resp.text, f"the download names the other tenant's object: {resp.text}"
    if resp.status_code == 200:  # allowed only as the export's own file
        data = REST.get(resp.json()["download_url"], timeout=30)
        assert data.status_code == 200, data.text
        assert data.content != ex.victim_data, "the download served the other tenant's file"
        assert data.content == ex.own[label]
    else:
        assert resp.status_code == 503, resp.text
        assert resp.json() == {
            "detail": "The export's file is not in this server's object store",
            "status_code": 503,
            "error_code": "DOWNLOAD_UNAVAILABLE",
        }
    _victim_is_intact(ex, s3)


def test_a_patched_file_ref_does_not_let_delete_or_expiry_remove_another_tenants_file(exports, s3):
    """Issue 12, H4: `status.output.fileRef` was trusted, so deleting an export (REST DELETE) or its
    expiry (the operator's sweep) deleted whatever object the status named. With two of the
    attacker's exports pointed at another tenant's file, one deleted over REST and one expiring
    (its expiresAt patched to a few seconds from now; the sweep runs every 2 s), both ExportJobs
    go, and the other tenant's object is still in MinIO, unchanged and downloadable by its owner."""
    ex, sc = exports, exports.api.scenario
    ns = ex.api.tenant.namespace

    _aim_at_victim(ex, "a-delete")
    req = sc.requested["a-delete"]
    assert REST.delete(f"{ex.api.url}/{req.id}", headers=req.headers, timeout=30).status_code == 204
    assert REST.get(f"{ex.api.url}/{req.id}", headers=req.headers, timeout=30).status_code == 404
    _victim_is_intact(ex, s3)

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _aim_at_victim(ex, "a-expire", expiresAt=soon)
    name = ex.exportjob("a-expire")
    wait_for(
        lambda: sc.cp.kubectl("-n", ns, "get", "exportjob", name, check=False).returncode != 0,
        30 + SWEEP_SECONDS,
        what="the expiry sweep to delete the patched ExportJob",
    )  # the sweep deletes an expired export's file before its ExportJob
    _victim_is_intact(ex, s3)


# --- L8: the verified-token cache honours revocation -------------------------------------------------

# The verifier's documented bound: a removed key's tokens stop "at most `reload_seconds` later". The
# API server builds its verifier with the default (no setting shortens it).
RELOAD_SECONDS = inspect.signature(TokenVerifier.__init__).parameters["reload_seconds"].default
CACHE_SECONDS = inspect.signature(TokenVerifier.__init__).parameters["cache_seconds"].default


def _jwks(*pairs: tuple[str, rsa.RSAPrivateKey]) -> str:
    keys = [
        {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig", "alg": "RS256"}
        for kid, key in pairs
    ]
    return json.dumps({"keys": keys})


def _write(path: Path, text: str) -> None:
    """Replace the file the way a Secret volume updates it: a new file renamed over the old one."""
    staged = path.with_suffix(".new")
    staged.write_text(text)
    staged.replace(path)


def test_a_key_removed_from_the_jwks_file_revokes_its_cached_tokens(api):  # noqa: F811
    """Issue 12, L8: the verified-token cache ignored revocation: a token verified once kept working
    for the cache's lifetime after its key was withdrawn. On a real API server configured with a
    JWKS file (AGENTCORE_JWKS_FILE, RS256 only), a token that was accepted (so cached) over REST and
    JSON-RPC is refused 401 on both within the verifier's reload interval (5 s; no setting shortens
    it) once its key is removed from the file, well before the cache would expire (30 s); a token of
    the key that stays keeps working."""
    assert RELOAD_SECONDS == 5.0 and CACHE_SECONDS == 30.0  # the interval this test holds it to
    ns = api.tenant.namespace
    old_key, kept_key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    jwks = api.state / f"jwks-{time.time_ns()}.json"
    jwks.write_text(_jwks(("k-old", old_key), ("k-kept", kept_key)))
    env = {**api.env, "AGENTCORE_JWKS_FILE": str(jwks)}
    env.pop("AGENTCORE_JWT_SECRET", None)  # RS256 keys from the file only
    claims = {"namespaces": [ns], "permissions": [VIEW, EXPORT], "exp": int(time.time()) + 300}
    old, kept = rs256(old_key, kid="k-old", **claims), rs256(kept_key, kid="k-kept", **claims)
    proc, port = _serve(env, api.state, "--host", "127.0.0.1")
    base = f"http://127.0.0.1:{port}"

    def rest(tok: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {tok}"}
        return REST.get(base + EXPORTS, headers=headers, params={"project_id": ns}, timeout=30)

    def rpc(tok: str) -> requests.Response:
        body = {"jsonrpc": "2.0", "method": "training.list_jobs", "params": {}, "id": 1}
        return requests.post(base + RPC, json=body, headers={"Authorization": f"Bearer {tok}"}, timeout=30)

    try:
        for tok in (old, kept):  # accepted, hence in the verified-token cache
            assert rest(tok).status_code == 200, rest(tok).text
            answer = rpc(tok)
            assert answer.status_code == 200 and "result" in answer.json(), answer.text
        assert jwt.get_unverified_header(old)["kid"] == "k-old"

        _write(jwks, _jwks(("k-kept", kept_key)))  # the key is withdrawn
        removed = time.monotonic()
        while (resp := rest(old)).status_code == 200 and time.monotonic() - removed < CACHE_SECONDS:
            time.sleep(0.1)
        took = time.monotonic() - removed
        assert resp.status_code == 401, f"the revoked token was still accepted after {took:.1f}s"
        assert took <= RELOAD_SECONDS + 1.0, f"refused only after {took:.1f}s, not within {RELOAD_SECONDS}s"
        assert resp.json() == {
            "detail": "Missing or invalid bearer token",
            "status_code": 401,
            "error_code": "UNAUTHORIZED",
        }
        refused = rpc(old)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == -32003, refused.text
        # The server reloaded rather than broke: the remaining key's (cached) token still works.
        assert rest(kept).status_code == 200
        assert "result" in rpc(kept).json()
    finally:
        proc.stop(10)
