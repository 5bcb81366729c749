"""JWT authentication: HS256, RS256 (PEM and JWKS), what is refused, and the 401 the HTTP layer sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from jwt.utils import base64url_encode

from agentcore.auth.tokens import AUDIENCE, AuthError, Principal, TokenVerifier, generate_secret, issue_token
from agentcore.server.app import create_app
from agentcore.server.jsonrpc import errors
from agentcore.server.settings import Settings
from tests.unit.server.jsonrpc.conftest import SECRET, Api, FakeKube, make_settings, token

CLAIMS = {"sub": "a", "aud": AUDIENCE, "exp": time.time() + 600}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def rs256(key: rsa.RSAPrivateKey, kid: str | None = None, **claims: Any) -> str:
    body = {
        "sub": "svc",
        "aud": AUDIENCE,
        "exp": int(time.time()) + 60,
        "permissions": ["training:view"],
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid} if kid else None)


def test_hs256_round_trip() -> None:
    verifier = TokenVerifier(hs256_secret=SECRET)
    principal = verifier.verify(
        issue_token(SECRET, "alice", ["training:view"], ["team-a", "team-b"], roles=["auditor"])
    )
    assert principal.sub == "alice" and principal.permissions == {"training:view"}
    assert principal.namespaces == ("team-a", "team-b") and principal.home_namespace("default") == "team-a"
    assert principal.has("training:view") and not principal.has("training:start")
    assert principal.may_use("team-b") and not principal.may_use("team-c")


def test_admin_role_and_all_namespaces() -> None:
    principal = TokenVerifier(hs256_secret=SECRET).verify(
        issue_token(SECRET, "root", [], ["*"], roles=["admin"])
    )
    assert principal.has("data:export") and principal.may_use("anything")
    assert principal.home_namespace("default") == "default"


@pytest.mark.parametrize(
    "bad_token",
    [
        issue_token("another-secret-0123456789abcdef0123456789", "alice"),  # bad signature
        issue_token(SECRET, "alice", ttl=-60),  # expired
        issue_token(SECRET, "alice", audience="someone-else"),
        jwt.encode({"sub": "alice", "aud": AUDIENCE}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"aud": AUDIENCE, "exp": time.time() + 60}, SECRET, algorithm="HS256"),  # no sub
        jwt.encode(CLAIMS, SECRET * 2, algorithm="HS512"),
        jwt.encode(CLAIMS, "", algorithm="none"),
        jwt.encode({**CLAIMS, "permissions": "training:view"}, SECRET, algorithm="HS256"),
        jwt.encode({**CLAIMS, "namespaces": [1]}, SECRET, algorithm="HS256"),
        "not.a.jwt",
        "",
    ],
    ids=[
        "signature",
        "expired",
        "audience",
        "no-exp",
        "no-sub",
        "hs512",
        "alg-none",
        "perm-str",
        "ns-int",
        "garbage",
        "empty",
    ],
)
def test_refused_tokens(bad_token: str) -> None:
    with pytest.raises(AuthError):
        TokenVerifier(hs256_secret=SECRET).verify(bad_token)


def test_rs256_with_a_pem(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(pem(rsa_key))
    verifier = TokenVerifier.from_files(public_key_file=tmp_path / "key.pem")
    assert verifier.verify(rs256(rsa_key)).sub == "svc"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AuthError):
        verifier.verify(rs256(other))
    # Algorithm confusion: an HS256 token whose HMAC key is the public key must not pass. (PyJWT
    # refuses PEM keys as HMAC secrets, so the token is built by hand.)
    header = base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = base64url_encode(
        json.dumps({"sub": "x", "aud": AUDIENCE, "exp": int(time.time()) + 60}).encode()
    )
    signing_input = header + b"." + payload
    signature = base64url_encode(hmac.new(pem(rsa_key), signing_input, hashlib.sha256).digest())
    with pytest.raises(AuthError):
        verifier.verify((signing_input + b"." + signature).decode())


def test_rs256_with_a_jwks(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = []
    for kid, key in (("k1", rsa_key), ("k2", other)):
        entry = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        keys.append({**entry, "kid": kid, "use": "sig", "alg": "RS256"})
    keys.append({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"})  # not an RSA signing key: ignored
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": keys}))
    verifier = TokenVerifier.from_files(jwks_file=tmp_path / "jwks.json")
    assert verifier.verify(rs256(rsa_key, kid="k1")).sub == "svc"
    assert verifier.verify(rs256(other, kid="k2")).sub == "svc"
    for bad in (rs256(rsa_key, kid="k2"), rs256(rsa_key, kid="unknown"), issue_token(SECRET, "alice")):
        with pytest.raises(AuthError):
            verifier.verify(bad)


def test_a_key_removed_from_the_jwks_revokes_its_cached_tokens(
    rsa_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(*pairs: tuple[str, rsa.RSAPrivateKey]) -> str:
        keys = [
            {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig", "alg": "RS256"}
            for kid, key in pairs
        ]
        return json.dumps({"keys": keys})

    path = tmp_path / "jwks.json"
    path.write_text(jwks(("k1", rsa_key), ("k2", other)))
    verifier = TokenVerifier.from_files(jwks_file=path, reload_seconds=0)
    old, new = rs256(rsa_key, kid="k1"), rs256(other, kid="k2")
    assert verifier.verify(old).sub == "svc"  # verified and cached
    staged = tmp_path / "jwks.new"
    staged.write_text(jwks(("k2", other)))
    staged.replace(path)  # how a Secret volume swaps its files: a new inode
    with pytest.raises(AuthError, match="unknown key id"):
        verifier.verify(old)
    assert verifier.verify(new).sub == "svc"


def test_cache_entries_are_bounded_in_time() -> None:
    verifier = TokenVerifier(hs256_secret=SECRET, cache_seconds=0)
    fresh = issue_token(SECRET, "alice")
    assert verifier.verify(fresh) is not verifier.verify(fresh)  # verified again, not served from cache


def test_keys_are_required_and_secrets_long() -> None:
    with pytest.raises(ValueError, match="no token verification key"):
        TokenVerifier()
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenVerifier(hs256_secret="short")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        issue_token("short", "alice")
    assert len(generate_secret()) >= 32


def test_cached_principals_expire() -> None:
    verifier = TokenVerifier(hs256_secret=SECRET, leeway=0)
    expired = issue_token(SECRET, "alice", ttl=-10)
    verifier._cache[expired] = (time.time(), Principal("alice", frozenset(), (), expires_at=time.time() - 10))
    with pytest.raises(AuthError):
        verifier.verify(expired)
    fresh = issue_token(SECRET, "alice")
    assert verifier.verify(fresh) is verifier.verify(fresh)  # the second is a cache hit


# --- over HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth_header",
    [
        None,
        "",
        "Bearer",
        "Bearer    ",
        f"Basic {SECRET}",
        "Bearer not.a.jwt",
        "Bearer " + issue_token("another-secret-0123456789abcdef0123456789", "alice"),
        "Bearer " + issue_token(SECRET, "alice", ttl=-60),
        "Bearer " + issue_token(SECRET, "alice", audience="wrong"),
    ],
    ids=["none", "empty", "no-token", "blank", "basic", "garbage", "signature", "expired", "audience"],
)
async def test_unauthenticated_requests_get_401(api: Api, auth_header: str | None) -> None:
    headers = {"Authorization": auth_header} if auth_header is not None else {}
    body = {"jsonrpc": "2.0", "method": "training.get_status", "params": {}, "id": "x"}
    resp = await api.http.post("/api/v1/jsonrpc", json=body, headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-RateLimit-Limit" in resp.headers
    assert await resp.json() == {
        "jsonrpc": "2.0",
        "error": {"code": errors.UNAUTHORIZED, "message": "Unauthorized: a valid bearer token is required"},
        "id": None,
    }


async def test_tokens_never_reach_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = token()
    bad = issue_token("another-secret-0123456789abcdef0123456789", "mallory")
    await api.call("rpc.discover", tok=good)
    await api.call("rpc.discover", tok=bad)
    text = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert good not in text and bad not in text
    access = [r for r in caplog.records if r.name == "agentcore.api.access"]
    assert (
        access
        and getattr(access[0], "sub", None) == "alice"
        and getattr(access[0], "rpc", None) == ["rpc.discover"]
    )


async def test_insecure_mode_needs_no_token(repo: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        app = create_app(
            make_settings(jwt_secret=None, insecure_disable_auth=True),
            kube_client_factory=FakeKube,
            repo=repo,
        )
    assert "AUTHENTICATION IS DISABLED" in caplog.text
    async with TestClient(TestServer(app)) as client:
        body = {"jsonrpc": "2.0", "method": "training.list_jobs", "id": 1}
        reply = await (await client.post("/api/v1/jsonrpc", json=body)).json()
    assert reply["result"]["jobs"] == []


def test_auth_must_be_configured() -> None:
    with pytest.raises(ValueError, match="no JWT verification key"):
        create_app(Settings())


def test_insecure_mode_listens_on_loopback_unless_told_otherwise() -> None:
    import argparse

    from agentcore.server.cli import add_arguments, listen_host

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert listen_host(parser.parse_args(["--insecure-disable-auth"])) == "127.0.0.1"
    assert listen_host(parser.parse_args(["--insecure-disable-auth", "--host", "0.0.0.0"])) == "0.0.0.0"
    assert listen_host(parser.parse_args([])) is None  # the settings' default (0.0.0.0) applies
