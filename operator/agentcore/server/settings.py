"""Configuration of the API server: command-line flags over environment variables over defaults,
through pydantic-settings. Every field can be set from the environment as ``AGENTCORE_<FIELD>``
(e.g. ``AGENTCORE_MAX_BODY_BYTES``); the ones the chart sets:

``AGENTCORE_DATABASE_URL``, ``AGENTCORE_OBJECT_STORE`` (``s3://bucket/prefix`` or ``file:///dir``),
``AGENTCORE_JWT_SECRET`` (HS256, at least 32 bytes) or ``AGENTCORE_JWT_SECRET_FILE``,
``AGENTCORE_JWT_PUBLIC_KEY_FILE`` (RS256 PEM), ``AGENTCORE_JWKS_FILE``, ``AGENTCORE_RATE_LIMITS``
(comma-separated ``METHOD=LIMIT[/WINDOW_SECONDS]``, e.g. ``training.get_status=100/60,default=200``,
applied over the spec's table), ``AGENTCORE_RATE_LIMIT_STORE`` (``memory``: per replica;
``postgresql``: shared by the replicas through the database's ``rate_limits`` table).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agentcore.api.ingest import DEFAULT_AUDIENCE as DEFAULT_INGEST_AUDIENCE
from agentcore.auth.tokens import AUDIENCE
from agentcore.server.ingest import IngestOptions
from agentcore.server.jsonrpc.training import TrainingOptions
from agentcore.server.ratelimit import SPEC_LIMITS, RateLimit, parse_limits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTCORE_", frozen=True, extra="ignore")

    host: str = "0.0.0.0"
    port: int = 8080
    # A second listener serving only /metrics, without tokens (for Prometheus, like the operator's
    # --metrics-port); 0: none. /metrics on `port` always needs an admin token.
    metrics_port: int = 0
    kubeconfig: str | None = None
    # None: SQLite in the working directory (agentcore.storage.db).
    database_url: str | None = None
    object_store: str | None = None
    jwt_secret: str | None = None
    jwt_secret_file: str | None = None  # read into jwt_secret when that is unset
    jwt_public_key_file: str | None = None
    jwks_file: str | None = None
    jwt_audience: str = AUDIENCE
    jwt_issuer: str | None = None
    insecure_disable_auth: bool = False
    # Watch only this namespace (a namespace-scoped deployment); None watches all.
    watch_namespace: str | None = None
    default_namespace: str = "default"
    rate_limits: Annotated[Mapping[str, RateLimit], NoDecode] = Field(
        default_factory=lambda: dict(SPEC_LIMITS)
    )
    # Where the rate limits' state lives: per process, or in the database so replicas share it.
    rate_limit_store: Literal["memory", "postgresql"] = "memory"
    max_body_bytes: int = 16 << 20
    max_batch_size: int = 100
    max_json_depth: int = 64
    inline_data_max_bytes: int = 256 << 10
    cancel_wait_seconds: float = 30.0
    evaluate_timeout_seconds: float = 900.0
    cache_sync_timeout_seconds: float = 10.0
    # Off by default: in a cluster the chart's migrations hook Job (agentcore migrate) is the one
    # writer of the schema, and `agentcore dev` migrates before starting components. A replica that
    # migrated at start raced the others and held schema rights it does not need.
    run_migrations: bool = False
    # Trajectories one namespace (tenant) may store in the shared database; 0: no cap. A batch that
    # would pass it is refused whole, and the trainer fails its job saying so.
    max_trajectories_per_namespace: int = Field(default=10_000_000, ge=0)
    # The ingestion endpoint of trainer pods (agentcore.server.ingest): the audience their projected
    # service-account tokens must be bound to, and its caps.
    ingest_audience: str = DEFAULT_INGEST_AUDIENCE
    ingest_max_batch_bytes: int = Field(default=32 << 20, ge=1)
    ingest_max_object_bytes: int = Field(default=1 << 30, ge=1)
    ingest_max_inflight: int = Field(default=4, ge=1)  # per TrainingJob
    ingest_max_inflight_total: int = Field(default=64, ge=1)

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _parse_limits(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: overrides of the spec's table
            return {**SPEC_LIMITS, **parse_limits([s for s in value.split(",") if s.strip()])}
        return value

    @model_validator(mode="after")
    def _secret_from_file(self) -> Settings:
        if not self.jwt_secret and self.jwt_secret_file:
            object.__setattr__(self, "jwt_secret", read_secret(self.jwt_secret_file))
        return self

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

    def ingest_options(self) -> IngestOptions:
        return IngestOptions(
            audience=self.ingest_audience,
            max_batch_bytes=self.ingest_max_batch_bytes,
            max_object_bytes=self.ingest_max_object_bytes,
            max_inflight=self.ingest_max_inflight,
            max_inflight_total=self.ingest_max_inflight_total,
        )

    def with_rate_limits(self, overrides: Mapping[str, RateLimit]) -> Settings:
        return self.model_copy(update={"rate_limits": {**self.rate_limits, **overrides}})

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from the environment; keyword arguments that are not None win."""
        return cls(**{k: v for k, v in overrides.items() if v is not None})


def read_secret(path: str | Path) -> str:
    return Path(path).read_text().strip()
