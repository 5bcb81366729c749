"""Download URLs for object stores that cannot presign (the local directory of `agentcore dev`):
the API server signs ``/api/v1/exports/{id}/file?expires=..&signature=..`` with an HMAC key of its
own and serves the file itself. Like an S3 presigned URL, the signature is the credential (no
bearer token) and it stops working at ``expires``. Replicas behind one Service need the same key.
"""

from __future__ import annotations

import hashlib
import hmac


def signature(key: bytes, export_id: str, expires: int) -> str:
    return hmac.new(key, f"{export_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def valid(key: bytes, export_id: str, expires: int, given: str, now: float) -> bool:
    return now < expires and hmac.compare_digest(signature(key, export_id, expires), given)
