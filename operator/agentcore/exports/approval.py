"""The API server's approval of a full export, for installs without the admission policy.

In a cluster install the ValidatingAdmissionPolicy asks RBAC whether whoever creates a `full`
ExportJob may (chart `admissionPolicy`). A namespaced install cannot have that cluster-scoped
policy, so there the API server signs each full export it creates after its own admin check: an
HMAC-SHA256, keyed by a secret only the API server and the operator hold, over the namespace, the
name, the creator and the spec. The operator, told to require it, starts no export pod for a full
ExportJob whose approval does not verify; one made with kubectl, or changed after the API server
made it, fails naming the annotation. The API server signs every ExportJob it creates, so the
same check tells whether its `created-by` annotation names the requester: an unsigned one's is
whatever its author wrote, and the operator does not copy it into `status.createdBy`. Our own
scheme rather than a library's: it is a MAC over a canonical JSON document, which the standard
library's hmac does in a few lines.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from agentcore.api.exports import ExportJob, ExportJobSpec, PrivacyLevel
from agentcore.api.labels import CREATED_BY, FULL_EXPORT_APPROVAL

REFUSED = (
    f"metadata.annotations[{FULL_EXPORT_APPROVAL}]: this installation has no admission policy, so a "
    "full export runs only as the API server approved it (POST /api/v1/exports with an admin token); "
    "this one has no valid approval (made with kubectl, or changed since)"
)


def approval(key: str, namespace: str, name: str, created_by: str, spec: ExportJobSpec) -> str:
    """The approval of exactly this export; ``spec.cancel`` is left out (cancelling changes it)."""
    document = {
        "namespace": namespace,
        "name": name,
        "createdBy": created_by,
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"cancel"}),
    }
    message = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def verified(key: str, ej: ExportJob) -> bool:
    """Whether the API server made ``ej`` exactly as it is now (so its creator is the request's)."""
    meta = ej.metadata
    given = meta.annotation(FULL_EXPORT_APPROVAL) or ""
    created_by = meta.annotation(CREATED_BY) or ""
    expected = approval(key, meta.namespace or "", meta.name or "", created_by, ej.spec) if key else ""
    return bool(expected) and hmac.compare_digest(given, expected)


def refusal(key: str, ej: ExportJob) -> str | None:
    """Why ``ej`` may not run (REFUSED), or None: not full, or approved as it is now."""
    if ej.spec.config.privacy_level != PrivacyLevel.FULL:
        return None
    return None if verified(key, ej) else REFUSED
