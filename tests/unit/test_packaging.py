"""The operator's wheel carries every non-Python file its code opens (the images install the wheel,
not the source tree)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # From a copy: setuptools reuses a build/ directory, which would hide a missing declaration.
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(REPO / "operator", src / "operator", ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("agentcore_training-*.whl")
    return zipfile.ZipFile(path)


@pytest.mark.parametrize(
    "member",
    [
        "agentcore/devenv/node/pause.c",  # the real node's pause image is compiled from it
        "agentcore/storage/migrations/env.py",
        "agentcore/storage/migrations/script.py.mako",
    ],
)
def test_the_wheel_ships_the_data_files_the_code_opens(wheel: zipfile.ZipFile, member: str) -> None:
    assert member in wheel.namelist()
