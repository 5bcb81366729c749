"""The export runtime stands alone: export pods must not pull in the operator's controllers."""

from __future__ import annotations

import subprocess
import sys

from agentcore.api.images import DEFAULT_TRAINER_IMAGE
from agentcore.controllers.common import config
from agentcore.exports.settings import ExportSettings


def test_export_runtime_does_not_import_the_controllers():
    # A fresh interpreter: this test process has imported the controllers already.
    code = (
        "import sys, agentcore.exports.exporter, agentcore.exports.pipeline, agentcore.exports.settings\n"
        "bad = sorted(m for m in sys.modules if m.startswith('agentcore.controllers'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_default_image_is_shared():
    assert ExportSettings().image == DEFAULT_TRAINER_IMAGE
    assert config.OperatorConfig().trainer_image == DEFAULT_TRAINER_IMAGE


def test_the_exporter_process_gives_arrow_the_system_allocator():
    """Arrow's default mimalloc pool kept freed row groups: the exporter sets the C library's
    malloc before pyarrow loads (an operator's explicit choice is kept)."""
    import os

    code = (
        "from agentcore.exports.cli import configure_process\n"
        "configure_process()\n"
        "import pyarrow\n"
        "print(pyarrow.default_memory_pool().backend_name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "system"
    env["ARROW_DEFAULT_MEMORY_POOL"] = "mimalloc"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "mimalloc"
