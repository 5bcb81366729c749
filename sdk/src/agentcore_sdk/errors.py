"""Typed errors of both APIs."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base of every SDK error: ``http_status`` of the response (None: no response) and
    ``retry_after`` seconds when the server rate-limited the call."""

    def __init__(
        self, message: str, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after


class TrainingApiError(ApiError):
    """A JSON-RPC error (``code``/``message``/``data`` as in the spec); ``code`` None for an
    unusable response or an unreachable server."""

    def __init__(
        self,
        code: int | None,
        message: str,
        data: Any = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, http_status, retry_after)
        self.code = code
        self.data = data
        self.args = (f"{code}: {message}" if code is not None else message,)


class ExportsApiError(ApiError):
    """A REST error body ``{detail, status_code, error_code, ...}``; the rest is in ``extra``."""

    def __init__(
        self,
        error_code: str | None,
        detail: str,
        http_status: int | None = None,
        extra: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, http_status, retry_after)
        self.error_code = error_code
        self.detail = detail
        self.extra = extra or {}
        self.args = (f"HTTP {http_status} {error_code}: {detail}",)
