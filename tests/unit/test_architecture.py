"""The import graph keeps the architecture: a shared core that both sides import, a control plane
that never imports the trainer, and a trainer that uses nothing of the control plane's runtime.

Every import statement counts, also the ones inside functions (a lazy import is still a
dependency), found by parsing the source rather than importing it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTROL_PLANE = REPO / "operator" / "agentcore"
TRAINER = REPO / "trainer-image" / "agentcore_trainer"

# The shared core: resource models and their constants, storage, Kubernetes access, the cost model,
# the data-source loader, logging.
SHARED_CORE = (
    "agentcore.api",
    "agentcore.storage",
    "agentcore.kube",
    "agentcore.cost",
    "agentcore.datasources",
    "agentcore.logs",
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if "." in node.module:  # `from agentcore import logs` depends on agentcore.logs only
                yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def graph(root: Path) -> dict[str, set[str]]:
    return {module_name(p, root): set(imports(p)) for p in sorted(root.rglob("*.py"))}


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_control_plane_never_imports_the_trainer() -> None:
    offenders = {
        module: sorted(i for i in deps if within(i, ("agentcore_trainer",)))
        for module, deps in graph(CONTROL_PLANE).items()
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_the_trainer_uses_only_the_shared_core_of_the_control_plane_package() -> None:
    offenders = {
        module: sorted(i for i in deps if within(i, ("agentcore",)) and not within(i, SHARED_CORE))
        for module, deps in graph(TRAINER).items()
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_the_shared_core_depends_on_nothing_else() -> None:
    core = {m: d for m, d in graph(CONTROL_PLANE).items() if within(m, SHARED_CORE)}
    offenders = {
        module: sorted(i for i in deps if within(i, ("agentcore",)) and not within(i, SHARED_CORE))
        for module, deps in core.items()
    }
    assert {m: d for m, d in offenders.items() if d} == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # The export pod's runtime is not the operator, nor the API server.
        ("agentcore.exports", ("agentcore.controllers", "agentcore.server")),
        # Controllers are not the API server (and the other way round).
        ("agentcore.controllers", ("agentcore.server",)),
        ("agentcore.server", ("agentcore.controllers",)),
        # The local dev environment is tooling: no product code depends on it.
        ("agentcore.api", ("agentcore.devenv",)),
        ("agentcore.controllers", ("agentcore.devenv",)),
        ("agentcore.server", ("agentcore.devenv",)),
        ("agentcore.exports", ("agentcore.devenv",)),
    ],
)
def test_layers(package: str, forbidden: tuple[str, ...]) -> None:
    offenders = {
        module: sorted(i for i in deps if within(i, forbidden))
        for module, deps in graph(CONTROL_PLANE).items()
        if within(module, (package,))
    }
    assert {m: d for m, d in offenders.items() if d} == {}


def test_no_package_shadows_the_standard_library() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()
    assert not (REPO / "trainer-image" / "__init__.py").exists()


def test_the_operator_process_does_not_load_the_exporter() -> None:
    """The exporter (SQL sources, writers) runs in export Jobs; an operator that loaded it paid
    ~20 MiB of RSS for nothing (bench/operator_scale.py)."""
    import subprocess
    import sys

    probe = (
        "import sys, agentcore.controllers.trainingjob.handlers, agentcore.controllers.exportjob.handlers;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'pyarrow', 'boto3'}"
        " or m.startswith(('agentcore.exports.sources', 'agentcore.exports.writers'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_only_the_migration_tools_run_migrations() -> None:
    """Issue 12: trainer and exporter pods ran schema migrations with the platform's credentials.
    Only the chart's hook Job (migrate_cli), `agentcore dev` and an API server told to
    (`run_migrations`, off by default) may import the migration runner."""
    allowed = {
        "agentcore.storage.migrate_cli",
        "agentcore.devenv.dev",
        "agentcore.server.app",
        "agentcore_trainer.runtime.main",  # only `agentcore trainer --dataset`: see below
    }
    runners = {"agentcore.storage.migrate", "agentcore.storage.migrate.upgrade"}
    users = {
        module
        for root in (CONTROL_PLANE, TRAINER)
        for module, deps in graph(root).items()
        if deps & runners and not module.startswith("agentcore.storage.migrat")
    }
    assert users <= allowed, sorted(users - allowed)
    # The trainer migrates only the standalone run's own database, never in a pod.
    tree = ast.parse((TRAINER / "runtime" / "main.py").read_text())
    importing = [
        fn.name
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.ImportFrom) and node.module == "agentcore.storage.migrate"
    ]
    assert importing == ["_standalone"]
    from agentcore.server.settings import Settings

    assert Settings.model_fields["run_migrations"].default is False
