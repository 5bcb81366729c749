"""Authentication of API callers: JWT bearer tokens carrying permissions and tenant namespaces."""

from agentcore.auth.tokens import (
    ADMIN_ROLE,
    ALL_NAMESPACES,
    ANONYMOUS,
    AUDIENCE,
    PERMISSIONS,
    AuthError,
    Principal,
    TokenVerifier,
    generate_secret,
    issue_token,
)

__all__ = [
    "ADMIN_ROLE",
    "ALL_NAMESPACES",
    "ANONYMOUS",
    "AUDIENCE",
    "PERMISSIONS",
    "AuthError",
    "Principal",
    "TokenVerifier",
    "generate_secret",
    "issue_token",
]
