"""The SDK runs against the real API server app in-process: the JSON-RPC harness's fixtures."""

from tests.unit.server.jsonrpc.conftest import api, repo, settings, sqlite_url

__all__ = ["api", "repo", "settings", "sqlite_url"]
