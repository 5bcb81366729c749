"""Who is calling: the one bearer-token check of the JSON-RPC and the REST routes.

Both APIs accept the same tokens (agentcore.auth.tokens) and answer a missing or bad one in their
own error shape; this is the part they share.
"""

from __future__ import annotations

import logging

from aiohttp import web

from agentcore.auth.tokens import AuthError, Principal, TokenVerifier

log = logging.getLogger(__name__)


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(request: web.Request, verifier: TokenVerifier) -> Principal | None:
    """The caller of a request, or None without a valid token (the reason is logged, never the token)."""
    token = bearer_token(request)
    if token is None:
        return None
    try:
        return verifier.verify(token)
    except AuthError as exc:
        log.info("refused a bearer token on %s: %s", request.path, exc)
        return None
