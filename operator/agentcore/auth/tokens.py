"""JWT bearer tokens: issuing (HS256, for ``agentcore dev`` and tests) and verifying (HS256 with a
shared secret, RS256 with a public key PEM or a JWKS file).

Claims:

- ``sub``: the caller; rate limits and the ``created-by`` annotation use it.
- ``aud``: must be ``agentcore-api`` (configurable); ``exp`` is required; ``iss`` checked if set.
- ``permissions``: a list of ``training:start``, ``training:view``, ``training:cancel``,
  ``training:evaluate``, ``data:export``. ``roles: ["admin"]`` grants all of them.
- ``namespaces``: the Kubernetes namespaces (tenants) the caller may use; ``"*"`` means all. The
  first listed namespace is where ``training.start_grpo`` creates jobs by default.

Each algorithm has its own key, chosen by the token header's ``alg``: an RS256 public key is
never used as an HMAC secret (the classic algorithm-confusion attack).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

AUDIENCE = "agentcore-api"
START, VIEW, CANCEL, EVALUATE, EXPORT = (
    "training:start",
    "training:view",
    "training:cancel",
    "training:evaluate",
    "data:export",
)
PERMISSIONS: tuple[str, ...] = (START, VIEW, CANCEL, EVALUATE, EXPORT)
ADMIN_ROLE = "admin"
ALL_NAMESPACES = "*"
MIN_HMAC_KEY_BYTES = 32  # RFC 7518 §3.2: at least the hash size


class AuthError(Exception):
    """Why a token was refused. For server logs only: clients get a generic 401."""


@dataclass(frozen=True)
class Principal:
    sub: str
    permissions: frozenset[str]
    namespaces: tuple[str, ...]
    roles: frozenset[str] = frozenset()
    expires_at: float | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def has(self, permission: str) -> bool:
        return self.is_admin or permission in self.permissions

    @property
    def all_namespaces(self) -> bool:
        return ALL_NAMESPACES in self.namespaces

    def may_use(self, namespace: str) -> bool:
        return self.all_namespaces or namespace in self.namespaces

    def home_namespace(self, fallback: str) -> str:
        """Where jobs go when the caller names no namespace: the first one of the token."""
        return next((ns for ns in self.namespaces if ns != ALL_NAMESPACES), fallback)


ANONYMOUS = Principal("anonymous", frozenset(PERMISSIONS), (ALL_NAMESPACES,), frozenset({ADMIN_ROLE}))
"""The caller when authentication is disabled (``--insecure-disable-auth``)."""


def generate_secret() -> str:
    """A fresh HS256 secret (48 random bytes, URL-safe text)."""
    return secrets.token_urlsafe(48)


def _hmac_key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if len(key) < MIN_HMAC_KEY_BYTES:
        raise ValueError(f"the HS256 secret must be at least {MIN_HMAC_KEY_BYTES} bytes")
    return key


def issue_token(
    secret: str | bytes,
    sub: str,
    permissions: Iterable[str] = PERMISSIONS,
    namespaces: Iterable[str] = (ALL_NAMESPACES,),
    roles: Iterable[str] = (),
    ttl: float = 3600.0,
    audience: str = AUDIENCE,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token for ``sub`` valid for ``ttl`` seconds (negative: already expired, for tests)."""
    issued = time.time() if now is None else now
    claims: dict[str, Any] = {
        "sub": sub,
        "aud": audience,
        "iat": int(issued),
        "exp": int(issued + ttl),
        "permissions": list(permissions),
        "namespaces": list(namespaces),
        "roles": list(roles),
    }
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, _hmac_key(secret), algorithm="HS256")


def _str_list(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AuthError(f"claim {name!r} must be a list of strings")
    return tuple(value)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise AuthError("claim 'sub' must be a non-empty string")
    exp = claims.get("exp")
    return Principal(
        sub=sub,
        permissions=frozenset(_str_list(claims, "permissions")),
        namespaces=_str_list(claims, "namespaces"),
        roles=frozenset(_str_list(claims, "roles")),
        expires_at=float(exp) if isinstance(exp, int | float) else None,
    )


class TokenVerifier:
    """Verifies bearer tokens; a successful verification is cached for at most `cache_seconds`
    (and never past the token's expiry). Keys from files are re-read when a file changes (a
    mounted Secret is updated in place): a removed or rotated key, and every token verified with
    it, stops working at the next check, at most `reload_seconds` later."""

    def __init__(
        self,
        hs256_secret: str | bytes | None = None,
        rs256_keys: Mapping[str | None, Any] | None = None,
        audience: str = AUDIENCE,
        issuer: str | None = None,
        leeway: float = 5.0,
        cache_size: int = 10_000,
        cache_seconds: float = 30.0,
        key_files: KeyFiles | None = None,
        reload_seconds: float = 5.0,
    ) -> None:
        self._hmac = _hmac_key(hs256_secret) if hs256_secret is not None else None
        self._rsa = dict(rs256_keys or {})
        if self._hmac is None and not self._rsa:
            raise ValueError("no token verification key configured")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._cache_size = cache_size
        self.cache_seconds = cache_seconds
        self._files = key_files
        self._reload_seconds = reload_seconds
        self._checked_at = time.monotonic()
        self._stamp = key_files.stamp() if key_files else None

    @classmethod
    def from_files(
        cls,
        hs256_secret: str | bytes | None = None,
        public_key_file: str | Path | None = None,
        jwks_file: str | Path | None = None,
        **options: Any,
    ) -> TokenVerifier:
        files = KeyFiles(public_key_file, jwks_file)
        return cls(hs256_secret=hs256_secret, rs256_keys=files.load(), key_files=files, **options)

    def verify(self, token: str) -> Principal:
        self._reload_if_changed()
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None:
            verified_at, principal = cached
            if now - verified_at < self.cache_seconds and (principal.expires_at or 0) + self.leeway > now:
                return principal
        principal = self._decode(token)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # crude but bounded; a full cache just means re-verifying
        self._cache[token] = (now, principal)
        return principal

    def _reload_if_changed(self) -> None:
        if self._files is None or time.monotonic() - self._checked_at < self._reload_seconds:
            return
        self._checked_at = time.monotonic()
        stamp = self._files.stamp()
        if stamp != self._stamp:
            self._rsa, self._stamp = self._files.load(), stamp
            self._cache.clear()

    def _decode(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            key = self._key_for(alg, header.get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"{type(exc).__name__}: {exc}") from None
        return principal_from_claims(claims)

    def _key_for(self, alg: Any, kid: Any) -> Any:
        if alg == "HS256" and self._hmac is not None:
            return self._hmac
        if alg == "RS256" and self._rsa:
            if kid in self._rsa:
                return self._rsa[kid]
            if None in self._rsa:
                return self._rsa[None]
            raise AuthError("unknown key id")
        raise AuthError(f"algorithm {alg!r} is not accepted")


@dataclass(frozen=True)
class KeyFiles:
    """RS256 verification keys kept in files: a PEM public key and/or a JWKS document."""

    public_key_file: str | Path | None = None
    jwks_file: str | Path | None = None

    def paths(self) -> list[Path]:
        return [Path(p) for p in (self.public_key_file, self.jwks_file) if p]

    def stamp(self) -> tuple[tuple[int, int], ...]:
        """What changes when a file is replaced or rewritten (a Secret volume swaps a symlink)."""
        stats = [p.stat() for p in self.paths()]
        return tuple((s.st_mtime_ns, s.st_ino) for s in stats)

    def load(self) -> dict[str | None, Any]:
        keys: dict[str | None, Any] = {}
        if self.public_key_file:
            keys[None] = Path(self.public_key_file).read_bytes()
        if self.jwks_file:
            keys.update(load_jwks(json.loads(Path(self.jwks_file).read_text())))
        return keys


def load_jwks(document: Mapping[str, Any]) -> dict[str | None, Any]:
    """RSA signing keys of a JWKS document by ``kid`` (a lone key without kid under None)."""
    keys: dict[str | None, Any] = {}
    for entry in document.get("keys", []):
        if (
            entry.get("kty") != "RSA"
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", "RS256") != "RS256"
        ):
            continue
        keys[entry.get("kid")] = jwt.PyJWK.from_dict(entry, algorithm="RS256").key
    if not keys:
        raise ValueError("the JWKS has no RSA signing key for RS256")
    return keys
