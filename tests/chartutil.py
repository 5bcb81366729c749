"""Helpers shared by the chart tests: render the chart with the project's own helm build."""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from agentcore.devenv import tools

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "agentcore-training"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# What `helm install` needs at least (the chart refuses to render without a database and a store).
MINIMAL: dict[str, Any] = {
    "database": {"url": "postgresql://agentcore:pw@db:5432/agentcore"},
    "objectStore": {"url": "s3://bucket/p"},
}

Obj = dict[str, Any]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(tools.helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def template_text(
    values: dict[str, Any] | None = None,
    files: Iterable[Path] = (),
    release: str = "ac",
    namespace: str = "agentcore",
    extra: Iterable[str] = (),
) -> str:
    """`helm template`; `values` (nested, as in values.yaml) goes in last, as a values file.
    Renders without cluster access are cached: the chart does not change during a test run."""
    extra = tuple(extra)
    key = json.dumps([values, [str(f) for f in files], release, namespace, extra], sort_keys=True)
    if any(arg.startswith("--dry-run") for arg in extra):  # looks the cluster up: never cached
        return _template(key)
    return _cached_template(key)


def _template(key: str) -> str:
    values, files, release, namespace, extra = json.loads(key)
    args = ["template", release, str(CHART), "--namespace", namespace, *extra]
    for f in files:
        args += ["-f", f]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as fh:
        yaml.safe_dump(values or {}, fh)
        fh.flush()
        return helm(*args, "-f", fh.name).stdout


_cached_template = functools.lru_cache(maxsize=64)(_template)


def docs(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d]


def render(values: dict[str, Any] | None = None, files: Iterable[Path] = (), **kw: Any) -> list[Obj]:
    return docs(template_text(values, files, **kw))


def by_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str, name_suffix: str = "") -> Obj:
    found = [o for o in by_kind(objs, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, (
        f"expected one {kind} *{name_suffix}, got {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def _hooks(obj: Obj) -> set[str]:
    return set(filter(None, (obj["metadata"].get("annotations") or {}).get("helm.sh/hook", "").split(",")))


def is_hook(obj: Obj) -> bool:
    """An install/upgrade lifecycle hook (applied before the release's objects)."""
    return bool(_hooks(obj) - {"test"})


def is_test_hook(obj: Obj) -> bool:
    """A `helm test` object: created only by `helm test`, never by an install."""
    return "test" in _hooks(obj)
