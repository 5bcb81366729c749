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
