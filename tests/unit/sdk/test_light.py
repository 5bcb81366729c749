"""The SDK installs and imports without the operator's heavy dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[3] / "sdk" / "src"
HEAVY = ("kopf", "numpy", "pyarrow", "aiohttp", "sqlalchemy", "boto3", "agentcore")


def test_import_loads_no_heavy_module() -> None:
    code = (
        "import json, sys; import agentcore_sdk, agentcore_sdk.cli, agentcore_sdk.models; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))"
    )
    # -I: no user site, no PYTHONPATH; only the SDK's directory on the path.
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(SDK)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == []


def test_sdk_declares_only_light_dependencies() -> None:
    text = (SDK.parent / "pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert all(name not in deps for name in HEAVY)
