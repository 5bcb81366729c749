"""Operator configuration: every field from the environment (``AGENTCORE_*``, as the chart sets
it) or from `agentcore operator` flags, through pydantic-settings."""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agentcore.api.images import DEFAULT_TRAINER_IMAGE
from agentcore.api.ingest import DEFAULT_AUDIENCE as DEFAULT_INGEST_AUDIENCE
from agentcore.controllers.leader.election import ElectionTiming, timing_problems
from agentcore.kube.config import own_namespace


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENTCORE_", frozen=True, extra="ignore", populate_by_name=True
    )

    trainer_image: str = DEFAULT_TRAINER_IMAGE
    # Images a TrainingJob's spec.image may name besides trainer_image: exact references, or
    # shell-style patterns (fnmatch; end a registry prefix with "/*"). Comma-separated from the
    # environment. A tenant's image runs next to the job's credentials: empty allows none.
    allowed_images: Annotated[tuple[str, ...], NoDecode] = ()
    # Further patterns for one namespace each (opt-in per tenant), from the environment as JSON:
    # {"team-a": ["registry.example.com/team-a/*"]}.
    allowed_images_by_namespace: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Where trainer pods reach their data: the API server's ingestion endpoint (agentcore.server.ingest),
    # with a projected service-account token bound to ingest_audience. Trainer pods get no credential.
    ingest_url: str = "http://127.0.0.1:8080"
    ingest_audience: str = DEFAULT_INGEST_AUDIENCE
    # The platform's stores: for the exporter's pods (controllers/exportjob); never in trainer pods.
    database_url: str = ""
    object_store: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = Field(default="", validation_alias=AliasChoices("AWS_ACCESS_KEY_ID"))
    s3_secret_key: str = Field(default="", validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY"))
    s3_region: str = Field(default="us-east-1", validation_alias=AliasChoices("AWS_REGION"))
    # Empty: all namespaces. From the environment as a comma-separated list.
    namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=AliasChoices("AGENTCORE_WATCH_NAMESPACES")
    )
    # Where export pods, their ServiceAccounts and credentials live: the operator's own namespace
    # (empty: the pod's own, see platform_ns()), never a tenant's, whose users could read a Secret
    # or exec into a pod there.
    platform_namespace: str = ""
    resync_seconds: float = 30.0
    # Objects handled at once (kopf's worker limit): when all are busy kopf stops reading the watch
    # streams, so a burst of N new jobs waits in the apiserver, not in this process's memory.
    max_concurrent_reconciles: int = Field(default=256, ge=1)
    metrics_port: int = 0  # 0: no metrics server
    webhook_timeout: float = 10.0
    webhook_retries: int = 5
    # Webhooks never reach loopback, private, link-local or metadata addresses, except these CIDRs
    # (comma-separated from the environment, e.g. 10.20.0.0/16 for an in-cluster receiver).
    webhook_allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()
    trainer_grace_seconds: int = 60
    extra_trainer_env: dict[str, str] = Field(default_factory=dict)
    # Leader election (client-go's semantics and defaults): one Lease per installation; its
    # namespace defaults to the pod's own (see controllers/leader/elector.py).
    lease_name: str = "agentcore-operator"
    lease_namespace: str = ""
    lease_duration_seconds: int = 15
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0

    @field_validator("namespaces", "webhook_allowed_networks", "allowed_images", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return tuple(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _election_timing(self) -> OperatorConfig:
        problems = timing_problems(
            self.lease_duration_seconds, self.renew_deadline_seconds, self.retry_period_seconds
        )
        if problems:
            names = "lease_duration_seconds, renew_deadline_seconds, retry_period_seconds"
            raise ValueError(f"leader election ({names}): {'; '.join(problems)}")
        return self

    def platform_ns(self) -> str:
        """The platform namespace: configured, else the operator pod's own, else ``default``."""
        return own_namespace(self.platform_namespace)

    def election_timing(self) -> ElectionTiming:
        return ElectionTiming(
            self.lease_duration_seconds, self.renew_deadline_seconds, self.retry_period_seconds
        )

    @classmethod
    def from_env(cls, **overrides: Any) -> OperatorConfig:
        """The environment, with explicit values (e.g. command-line flags) winning."""
        return cls(**overrides)

    def image_refused(self, image: str | None, namespace: str = "") -> str | None:
        """Why a TrainingJob of `namespace` may not run `image` (a message naming the field), or None."""
        if image is None or image == self.trainer_image:
            return None
        patterns = (*self.allowed_images, *self.allowed_images_by_namespace.get(namespace, ()))
        if any(fnmatch.fnmatchcase(image, pattern) for pattern in patterns):
            return None
        return (
            f"spec.image: {image!r} is neither the platform's trainer image nor one of the operator's "
            f"allowed images for namespace {namespace!r} (AGENTCORE_ALLOWED_IMAGES, "
            "AGENTCORE_ALLOWED_IMAGES_BY_NAMESPACE)"
        )

    def trainer_secret_data(self) -> dict[str, str]:
        """What the exporter's pods need to reach the database and the object store (trainer pods
        no longer get it: they use the ingestion endpoint)."""
        data = {
            "AGENTCORE_DATABASE_URL": self.database_url,
            "AGENTCORE_OBJECT_STORE": self.object_store,
            "AGENTCORE_S3_ENDPOINT": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3_secret_key,
            "AWS_REGION": self.s3_region,
            **self.extra_trainer_env,
        }
        return {k: v for k, v in data.items() if v}
