"""Operator configuration, from the environment (the chart sets it) or `agentcore operator` flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_TRAINER_IMAGE = "ghcr.io/agentcore/agentcore-training:0.1.0"


@dataclass(frozen=True)
class OperatorConfig:
    trainer_image: str = DEFAULT_TRAINER_IMAGE
    # Handed to trainer pods through a per-job Secret (the pods run in the jobs' namespaces).
    database_url: str = ""
    object_store: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    resync_seconds: float = 30.0
    metrics_port: int = 0  # 0: no metrics server
    webhook_timeout: float = 10.0
    webhook_retries: int = 5
    trainer_grace_seconds: int = 60
    extra_trainer_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> OperatorConfig:
        env = os.environ
        return cls(
            trainer_image=env.get("AGENTCORE_TRAINER_IMAGE", DEFAULT_TRAINER_IMAGE),
            database_url=env.get("AGENTCORE_DATABASE_URL", ""),
            object_store=env.get("AGENTCORE_OBJECT_STORE", ""),
            s3_endpoint=env.get("AGENTCORE_S3_ENDPOINT", ""),
            s3_access_key=env.get("AWS_ACCESS_KEY_ID", ""),
            s3_secret_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
            s3_region=env.get("AWS_REGION", "us-east-1"),
            namespaces=tuple(n for n in env.get("AGENTCORE_WATCH_NAMESPACES", "").split(",") if n),
            resync_seconds=float(env.get("AGENTCORE_RESYNC_SECONDS", "30")),
            metrics_port=int(env.get("AGENTCORE_METRICS_PORT", "0")),
        )

    def trainer_secret_data(self) -> dict[str, str]:
        """What the trainer needs to reach the database and the object store."""
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
