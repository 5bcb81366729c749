"""`agentcore adapter`: a TrainingJob's LLM checkpoint as a PEFT adapter directory.

A transformers-backend checkpoint is a zip holding ``adapter_config.json`` and
``adapter_model.safetensors`` (what ``PeftModel.from_pretrained`` reads) next to the trainer's own
resume state; this writes only the adapter files, so the directory is exactly a PEFT adapter.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

from agentcore.storage.checkpoints import CheckpointManager, checkpoint_prefix, pick_checkpoint
from agentcore.storage.objectstore import ObjectStore, open_store

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS)


def extract_adapter(blob: bytes, out: Path) -> list[Path]:
    """Write the adapter files of a checkpoint blob into `out` (ValueError if it holds none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            missing = [name for name in ADAPTER_FILES if name not in zf.namelist()]
            if missing:
                raise ValueError(f"the checkpoint holds no PEFT adapter (missing {missing})")
            out.mkdir(parents=True, exist_ok=True)
            for name in ADAPTER_FILES:
                (out / name).write_bytes(zf.read(name))
    except zipfile.BadZipFile as exc:
        raise ValueError("not an LLM checkpoint (a built-in policy checkpoint has no adapter)") from exc
    return [out / name for name in ADAPTER_FILES]


def download_adapter(
    store: ObjectStore, namespace: str, name: str, checkpoint_id: str | None, out: Path
) -> tuple[str, list[Path]]:
    """The named checkpoint (default: the best, else the newest) of a TrainingJob, as an adapter dir."""
    manager = CheckpointManager(store, checkpoint_prefix(namespace, name))
    info = pick_checkpoint(manager, checkpoint_id)
    return info.id, extract_adapter(manager.load(info), out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--object-store", required=True, help="the platform store: s3://bucket/prefix or file:///dir"
    )
    parser.add_argument("--job", required=True, metavar="NAMESPACE/NAME", help="the TrainingJob")
    parser.add_argument("--checkpoint", default=None, help="checkpoint id (default: the best)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the adapter into")


def run(args: argparse.Namespace) -> int:
    namespace, _, name = str(args.job).partition("/")
    if not namespace or not name:
        print("agentcore adapter: --job must be NAMESPACE/NAME")
        return 2
    try:
        checkpoint, files = download_adapter(
            open_store(args.object_store), namespace, name, args.checkpoint, args.out
        )
    except (LookupError, ValueError) as exc:
        print(f"agentcore adapter: {exc}")
        return 1
    print(f"checkpoint {checkpoint}: wrote {', '.join(str(f) for f in files)}")
    return 0
