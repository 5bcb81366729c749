"""What both end-to-end suites (kind, tests/e2e; the real node, tests/node) share: the release they
install, its jobs' namespace and JWT secret, and a call to the API server as a tenant."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from agentcore.auth.tokens import EXPORT, VIEW, issue_token

JOBS_NS = "e2e"
RELEASE = "ac"
JWT_SECRET = "e2e-" + "k" * 60


def call(url: str, method: str, path: str, body: Any = None, *permissions: str) -> tuple[int, Any]:
    token = issue_token(JWT_SECRET, "e2e", permissions=permissions or (VIEW, EXPORT), namespaces=[JOBS_NS])
    req = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
