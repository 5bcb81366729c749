"""The per-tenant pseudonymisation key: 32 random bytes in the Secret ``agentcore-export-key`` of the
namespace. The operator creates it the first time the namespace exports anything; it is not owned
by any ExportJob, so pseudonyms stay stable across exports. Deleting the Secret rotates the key
(later exports get new pseudonyms, which cannot be linked to the old ones)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from agentcore.api import labels
from agentcore.kube.client import SECRETS, ApiError, KubeClient

KEY_SECRET = "agentcore-export-key"
KEY_FIELD = "key"
KEY_BYTES = 32


class KeyUnavailable(RuntimeError):
    pass


def key_secret(namespace: str, key: bytes | None = None) -> dict[str, Any]:
    material = key if key is not None else secrets.token_bytes(KEY_BYTES)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": KEY_SECRET,
            "namespace": namespace,
            "labels": {
                labels.MANAGED_BY: labels.OPERATOR_NAME,
                labels.KEY_COMPONENT: "export-key",
            },
            "annotations": {
                labels.KEY_DESCRIPTION: "HMAC-SHA256 key for pseudonyms in this namespace's exports; "
                "deleting it rotates the key"
            },
        },
        "data": {KEY_FIELD: base64.b64encode(material).decode()},
    }


async def ensure_key_secret(kube: KubeClient, namespace: str) -> bool:
    """Create the Secret if it does not exist; True when it was created now."""
    try:
        await kube.create(SECRETS, key_secret(namespace), namespace)
        return True
    except ApiError as exc:
        if exc.status == 409:
            return False
        raise


async def read_key(kube: KubeClient, namespace: str) -> bytes:
    try:
        secret = await kube.get(SECRETS, KEY_SECRET, namespace)
    except ApiError as exc:
        raise KeyUnavailable(f"cannot read Secret {KEY_SECRET} in {namespace}: {exc}") from exc
    value = (secret.get("data") or {}).get(KEY_FIELD)
    if not value:
        raise KeyUnavailable(f"Secret {KEY_SECRET} in {namespace} has no {KEY_FIELD!r} key")
    key = base64.b64decode(value)
    if len(key) < 16:
        raise KeyUnavailable(f"Secret {KEY_SECRET} in {namespace}: the key must have at least 16 bytes")
    return key
