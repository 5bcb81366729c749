"""`agentcore adapter`: an LLM checkpoint in the object store → a PEFT adapter directory."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from agentcore.storage.checkpoints import CheckpointManager, checkpoint_prefix
from agentcore.storage.objectstore import LocalObjectStore
from agentcore_trainer.cli import register
from agentcore_trainer.policies.adapter import extract_adapter


def _blob() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("adapter_config.json", json.dumps({"peft_type": "LORA", "r": 4}))
        zf.writestr("adapter_model.safetensors", b"weights")
        zf.writestr("trainer_state.json", "{}")
        zf.writestr("optimizer.safetensors", b"")
    return buf.getvalue()


def test_cli_writes_the_best_checkpoints_adapter_files_only(tmp_path: Path) -> None:
    import argparse

    store = LocalObjectStore(tmp_path / "store")
    manager = CheckpointManager(store, checkpoint_prefix("team-a", "agent"))
    manager.save(b"old", 1, "0.01", validation_score=0.1, suffix=".zip")
    best = manager.save(_blob(), 2, "0.02", validation_score=0.9, suffix=".zip")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "adapter"
    store_uri = f"file://{tmp_path / 'store'}"
    args = parser.parse_args(
        ["adapter", "--object-store", store_uri, "--job", "team-a/agent", "--out", str(out)]
    )
    assert args.func(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    assert best.blob_key.endswith(".zip")


def test_builtin_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no adapter"):
        extract_adapter(b"\x93NUMPY not a zip", tmp_path)
