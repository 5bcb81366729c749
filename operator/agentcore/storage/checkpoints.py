"""Checkpoints in an object store, written atomically: the state blob first, then a manifest
naming it with its SHA-256. A checkpoint exists only once its manifest does, and a manifest whose
blob is missing or corrupt is skipped on resume."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from agentcore.storage.objectstore import ObjectNotFound, ObjectStore


@dataclass(frozen=True)
class CheckpointInfo:
    id: str
    iteration: int
    blob_key: str
    sha256: str
    size: int
    uri: str
    created_at: str
    cost_usd: str
    validation_score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        """The TrainingJob status entry (camelCase)."""
        entry: dict[str, Any] = {
            "id": self.id,
            "iteration": self.iteration,
            "uri": self.uri,
            "createdAt": self.created_at,
        }
        if self.validation_score is not None:
            entry["validationScore"] = self.validation_score
        return entry


class CheckpointManager:
    def __init__(self, store: ObjectStore, prefix: str, retention: int = 5) -> None:
        self.store = store
        self.prefix = prefix.strip("/") + "/"
        self.retention = max(1, retention)

    def save(
        self,
        state: bytes,
        iteration: int,
        cost_usd: str,
        validation_score: float | None = None,
        extra: dict[str, Any] | None = None,
        suffix: str = ".npz",
    ) -> CheckpointInfo:
        """Save a state blob; `suffix` names its format (.npz built-in policy, .zip LLM adapter)."""
        ckpt_id = f"ckpt-{iteration:06d}-{uuid.uuid4().hex[:8]}"
        blob_key = f"{self.prefix}{ckpt_id}{suffix}"
        uri = self.store.put_bytes(blob_key, state)
        info = CheckpointInfo(
            id=ckpt_id,
            iteration=iteration,
            blob_key=blob_key,
            sha256=hashlib.sha256(state).hexdigest(),
            size=len(state),
            uri=uri,
            created_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            cost_usd=cost_usd,
            validation_score=validation_score,
            extra=extra or {},
        )
        self.store.put_bytes(
            f"{self.prefix}{ckpt_id}.json", json.dumps(asdict(info)).encode(), "application/json"
        )
        self._apply_retention()
        return info

    def manifests(self) -> list[CheckpointInfo]:
        """Every checkpoint with a manifest, oldest first."""
        infos = []
        for key in self.store.list(self.prefix):
            if key.endswith(".json"):
                try:
                    infos.append(CheckpointInfo(**json.loads(self.store.get_bytes(key))))
                except (ObjectNotFound, ValueError, TypeError):
                    continue
        return sorted(infos, key=lambda c: (c.iteration, c.created_at))

    def load(self, info: CheckpointInfo) -> bytes:
        data = self.store.get_bytes(info.blob_key)
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise ValueError(f"checkpoint {info.id} is corrupt (checksum mismatch)")
        return data

    def latest_valid(self) -> tuple[CheckpointInfo, bytes] | None:
        for info in reversed(self.manifests()):
            try:
                return info, self.load(info)
            except (ObjectNotFound, ValueError):
                continue
        return None

    def find(self, checkpoint_id: str) -> CheckpointInfo | None:
        return next((c for c in self.manifests() if c.id == checkpoint_id), None)

    def best(self) -> CheckpointInfo | None:
        scored = [c for c in self.manifests() if c.validation_score is not None]
        if not scored:
            return None
        return max(scored, key=lambda c: (c.validation_score or 0.0, c.iteration))

    def _apply_retention(self) -> None:
        infos = self.manifests()
        best = self.best()
        keep = {c.id for c in infos[-self.retention :]} | ({best.id} if best else set())
        for info in infos:
            if info.id not in keep:
                # Manifest first: a checkpoint without its manifest no longer exists.
                self.store.delete(f"{self.prefix}{info.id}.json")
                self.store.delete(info.blob_key)


class CheckpointNotFound(LookupError):
    """No checkpoint with that id (or none at all) for the job."""


def checkpoint_prefix(namespace: str, name: str) -> str:
    """Where a TrainingJob's checkpoints live in the object store (the trainer writes them there)."""
    return f"checkpoints/{namespace}/{name}"


def pick_checkpoint(manager: CheckpointManager, checkpoint_id: str | None) -> CheckpointInfo:
    """The named checkpoint, else the best by validation score, else the newest."""
    if checkpoint_id:
        found = manager.find(checkpoint_id)
        if found is None:
            raise CheckpointNotFound(f"checkpoint {checkpoint_id!r} not found")
        return found
    manifests = manager.manifests()
    if not manifests:
        raise CheckpointNotFound("the job has no checkpoint yet")
    return manager.best() or manifests[-1]
