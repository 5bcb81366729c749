"""The end-to-end suite needs a Docker engine (kind runs Kubernetes nodes as containers). Without
one, every test marked `e2e` is skipped with the reason; deselect the suite with `-m "not e2e"`."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

import pytest


@cache
def docker_unavailable() -> str | None:
    """Why Docker cannot be used here, or None when `docker info` reaches an engine."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    try:
        proc = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if proc.returncode != 0 or not proc.stdout.strip():
        detail = (proc.stderr.strip().splitlines() or ["no server version"])[-1]
        return f"no Docker engine reachable (`docker info`: {detail})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    for item in items:
        if item.get_closest_marker("e2e") is None:
            continue
        reason = reason or docker_unavailable()
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"e2e (kind) suite skipped: {reason}"))
