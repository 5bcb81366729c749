"""Configuration of the API server: command-line flags over environment variables over defaults.

Environment: ``AGENTCORE_DATABASE_URL``, ``AGENTCORE_OBJECT_STORE`` (``s3://bucket/prefix`` or
``file:///dir``), ``AGENTCORE_JWT_SECRET`` (HS256, at least 32 bytes), ``AGENTCORE_JWT_SECRET_FILE``,
``AGENTCORE_JWT_PUBLIC_KEY_FILE`` (RS256 PEM), ``AGENTCORE_JWKS_FILE``,
``AGENTCORE_RATE_LIMITS`` (comma-separated ``METHOD=LIMIT[/WINDOW_SECONDS]``, e.g.
``training.get_status=100/60,default=200``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agentcore.auth.tokens import AUDIENCE
from agentcore.server.jsonrpc.training import TrainingOptions
from agentcore.server.ratelimit import SPEC_LIMITS, RateLimit, parse_limits


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    kubeconfig: str | None = None
    # None: AGENTCORE_DATABASE_URL, else SQLite in the working directory (agentcore.storage.db).
    database_url: str | None = None
    object_store: str | None = None
    jwt_secret: str | None = None
    jwt_public_key_file: str | None = None
    jwks_file: str | None = None
    jwt_audience: str = AUDIENCE
    jwt_issuer: str | None = None
    insecure_disable_auth: bool = False
    # Watch only this namespace (a namespace-scoped deployment); None watches all.
    watch_namespace: str | None = None
    default_namespace: str = "default"
    rate_limits: Mapping[str, RateLimit] = field(default_factory=lambda: dict(SPEC_LIMITS))
    max_body_bytes: int = 16 << 20
    max_batch_size: int = 100
    max_json_depth: int = 64
    inline_data_max_bytes: int = 256 << 10
    cancel_wait_seconds: float = 30.0
    evaluate_timeout_seconds: float = 900.0
    cache_sync_timeout_seconds: float = 10.0
    run_migrations: bool = True

    @property
    def auth_configured(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key_file or self.jwks_file)

    def training_options(self) -> TrainingOptions:
        return TrainingOptions(
            default_namespace=self.default_namespace,
            inline_data_max_bytes=self.inline_data_max_bytes,
            cancel_wait_seconds=self.cancel_wait_seconds,
            evaluate_timeout_seconds=self.evaluate_timeout_seconds,
            cache_sync_timeout_seconds=self.cache_sync_timeout_seconds,
        )

    def with_rate_limits(self, overrides: Mapping[str, RateLimit]) -> Settings:
        return replace(self, rate_limits={**self.rate_limits, **overrides})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment; keyword arguments that are not None win."""
        env = os.environ if environ is None else environ
        secret = env.get("AGENTCORE_JWT_SECRET")
        if not secret and env.get("AGENTCORE_JWT_SECRET_FILE"):
            secret = read_secret(env["AGENTCORE_JWT_SECRET_FILE"])
        values: dict[str, Any] = {
            "database_url": env.get("AGENTCORE_DATABASE_URL") or None,
            "object_store": env.get("AGENTCORE_OBJECT_STORE") or None,
            "jwt_secret": secret or None,
            "jwt_public_key_file": env.get("AGENTCORE_JWT_PUBLIC_KEY_FILE") or None,
            "jwks_file": env.get("AGENTCORE_JWKS_FILE") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        limits = env.get("AGENTCORE_RATE_LIMITS", "")
        if limits.strip():
            settings = settings.with_rate_limits(parse_limits([s for s in limits.split(",") if s.strip()]))
        return settings


def read_secret(path: str | Path) -> str:
    return Path(path).read_text().strip()
