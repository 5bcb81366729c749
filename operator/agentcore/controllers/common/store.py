"""The platform object store as the operator opens it (export files, staged Secret data)."""

from __future__ import annotations

from agentcore.controllers.common.config import OperatorConfig
from agentcore.storage.objectstore import ObjectStore, open_store


def operator_store(config: OperatorConfig) -> ObjectStore | None:
    if not config.object_store:
        return None
    if config.object_store.startswith("s3://"):
        return open_store(
            config.object_store,
            endpoint_url=config.s3_endpoint or None,
            access_key=config.s3_access_key or None,
            secret_key=config.s3_secret_key or None,
            region=config.s3_region,
        )
    return open_store(config.object_store)
