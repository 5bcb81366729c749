"""Export settings shared by the operator, the export pods and the REST API (environment first)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentcore.api import labels
from agentcore.api.exports import DEFAULT_RETENTION_SECONDS
from agentcore.api.images import DEFAULT_TRAINER_IMAGE

LABEL_EXPORTJOB = labels.EXPORTJOB
LABEL_EXPORT_ID = labels.EXPORT_ID
ANNOTATION_CREATED_BY = labels.CREATED_BY
ANNOTATION_ESTIMATED_SECONDS = labels.ESTIMATED_SECONDS
EXPORT_PREFIX = "exports"
MAX_CONCURRENT_PER_TENANT = 3  # the spec's "Concurrent exports: 3 per tenant"


class ExportSettings(BaseSettings):
    """Every field from the environment as ``AGENTCORE_EXPORT_<FIELD>`` (pydantic-settings)."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTCORE_EXPORT_", frozen=True, extra="ignore", populate_by_name=True
    )

    # The exporter ships in the same image as the trainer.
    image: str = Field(
        default=DEFAULT_TRAINER_IMAGE,
        validation_alias=AliasChoices("AGENTCORE_EXPORTER_IMAGE", "AGENTCORE_TRAINER_IMAGE"),
    )
    max_concurrent: int = MAX_CONCURRENT_PER_TENANT
    retention_seconds: int = DEFAULT_RETENTION_SECONDS
    sweep_seconds: float = 60.0
    backoff_limit: int = 2
    active_deadline_seconds: int = Field(
        default=3600,
        validation_alias=AliasChoices(
            "AGENTCORE_EXPORT_DEADLINE_SECONDS", "AGENTCORE_EXPORT_ACTIVE_DEADLINE_SECONDS"
        ),
    )
    grace_seconds: int = 30
    job_ttl_seconds: int = 3600
    # The key of the API server's approvals of full exports (exports/approval.py), held by the API
    # server and the operator only; and whether the operator requires an approval: installs without
    # the admission policy (the chart's namespaced mode).
    approval_key: SecretStr = SecretStr("")
    require_approval: bool = False

    @model_validator(mode="after")
    def _approval_needs_a_key(self) -> ExportSettings:
        if self.require_approval and not self.approval_key.get_secret_value():
            raise ValueError("AGENTCORE_EXPORT_REQUIRE_APPROVAL needs AGENTCORE_EXPORT_APPROVAL_KEY")
        return self

    @classmethod
    def from_env(cls) -> ExportSettings:
        return cls()


def object_key(namespace: str, export_id: str, file_name: str) -> str:
    return f"{EXPORT_PREFIX}/{namespace}/{export_id}/{file_name}"


def key_from_ref(store_uri: str, file_ref: str, namespace: str, export_id: str) -> str | None:
    """The store-relative key of a status.output.fileRef, or None unless it is this export's own
    object: one file directly under exports/<namespace>/<export id>/ of this store.

    The status is written by the exporter pod, which runs in the tenant's namespace; trusting its
    fileRef would let that pod aim a download (or the expiry sweep's delete) at another tenant's
    file."""
    base = store_uri.rstrip("/") + "/"
    if not file_ref.startswith(base):
        return None
    key = file_ref[len(base) :]
    own = object_key(namespace, export_id, "")
    name = key[len(own) :]
    if not key.startswith(own) or not name or "/" in name or name in (".", ".."):
        return None
    return key
