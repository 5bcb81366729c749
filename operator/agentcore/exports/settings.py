"""Export settings shared by the operator, the export pods and the REST API (environment first)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from agentcore.api import labels
from agentcore.api.exports import DEFAULT_RETENTION_SECONDS
from agentcore.api.images import DEFAULT_TRAINER_IMAGE

LABEL_EXPORTJOB = labels.EXPORTJOB
LABEL_EXPORT_ID = labels.EXPORT_ID
ANNOTATION_CREATED_BY = labels.CREATED_BY
ANNOTATION_ESTIMATED_SECONDS = labels.ESTIMATED_SECONDS
EXPORT_PREFIX = "exports"
MAX_CONCURRENT_PER_TENANT = 3  # the spec's "Concurrent exports: 3 per tenant"


@dataclass(frozen=True)
class ExportSettings:
    image: str = DEFAULT_TRAINER_IMAGE  # the exporter ships in the same image as the trainer
    max_concurrent: int = MAX_CONCURRENT_PER_TENANT
    retention_seconds: int = DEFAULT_RETENTION_SECONDS
    sweep_seconds: float = 60.0
    backoff_limit: int = 2
    active_deadline_seconds: int = 3600
    grace_seconds: int = 30
    job_ttl_seconds: int = 3600

    @classmethod
    def from_env(cls) -> ExportSettings:
        env = os.environ
        return cls(
            image=env.get("AGENTCORE_EXPORTER_IMAGE")
            or env.get("AGENTCORE_TRAINER_IMAGE")
            or DEFAULT_TRAINER_IMAGE,
            max_concurrent=int(env.get("AGENTCORE_EXPORT_MAX_CONCURRENT", MAX_CONCURRENT_PER_TENANT)),
            retention_seconds=int(env.get("AGENTCORE_EXPORT_RETENTION_SECONDS", DEFAULT_RETENTION_SECONDS)),
            sweep_seconds=float(env.get("AGENTCORE_EXPORT_SWEEP_SECONDS", "60")),
            backoff_limit=int(env.get("AGENTCORE_EXPORT_BACKOFF_LIMIT", "2")),
            active_deadline_seconds=int(env.get("AGENTCORE_EXPORT_DEADLINE_SECONDS", "3600")),
            job_ttl_seconds=int(env.get("AGENTCORE_EXPORT_JOB_TTL_SECONDS", "3600")),
        )


def object_key(namespace: str, export_id: str, file_name: str) -> str:
    return f"{EXPORT_PREFIX}/{namespace}/{export_id}/{file_name}"


def key_from_ref(store_uri: str, file_ref: str) -> str | None:
    """The store-relative key of a status.output.fileRef, or None if it is not in this store."""
    base = store_uri.rstrip("/") + "/"
    return file_ref[len(base) :] if file_ref.startswith(base) else None
