"""Load TrainingQuery lists from a TrainingJob's data source: inline, a ConfigMap or Secret key,
or an object-store URI. Used by the operator (to validate before starting), the trainer and the
API server's evaluation backend.

Reads are bounded by a :class:`DataPolicy` (the same in every component, from the environment):
a URI must lie under the tenant's own prefix of the platform store (``<store>/datasets/<namespace>/``,
where the API server uploads large datasets) or under an allow-listed prefix; the object must be
a regular object of at most ``max_bytes``; the read and the parse happen off the event loop and
within ``timeout_seconds``. So a TrainingJob naming ``file:///dev/zero`` or another tenant's bucket
gets a clear ValidationFailed, and cannot exhaust the operator's memory.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import posixpath
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agentcore.api import labels
from agentcore.api.common import KeySelector
from agentcore.api.training import DataSource, TrainingQuery
from agentcore.kube.client import CONFIGMAPS, SECRETS, ApiError, KubeClient
from agentcore.storage.objectstore import ObjectNotFound, ObjectStore, ObjectTooLarge, open_store

StoreOpener = Callable[[str], ObjectStore]
DATASETS_PREFIX = "datasets"


class DataSourceError(ValueError):
    """The source cannot be read or does not hold valid queries; the message says which and why."""


class DataPolicy(BaseSettings):
    """Which data URIs a TrainingJob may name, and how much may be read (``AGENTCORE_DATA_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTCORE_DATA_", frozen=True, extra="ignore", populate_by_name=True
    )

    # The platform store (the API server's uploads live under <store>/datasets/<namespace>/).
    store: str = Field(default="", validation_alias="AGENTCORE_OBJECT_STORE")
    # Further URI prefixes every tenant may read, e.g. s3://shared-datasets/public/ (comma-separated).
    allowed_uris: Annotated[tuple[str, ...], NoDecode] = ()
    max_bytes: int = 64 << 20
    timeout_seconds: float = 30.0

    @field_validator("allowed_uris", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value

    def tenant_prefix(self, namespace: str) -> str | None:
        return f"{self.store.rstrip('/')}/{DATASETS_PREFIX}/{namespace}/" if self.store else None

    def check(self, uri: str, namespace: str) -> None:
        """Raise DataSourceError unless `uri` is one this tenant may read."""
        normal = _normalise(uri)
        prefixes = [p for p in (self.tenant_prefix(namespace), *self.allowed_uris) if p]
        if not any(normal.startswith(_normalise(p).rstrip("/") + "/") for p in prefixes):
            allowed = ", ".join(prefixes) or "none configured"
            raise DataSourceError(
                f"uri {uri!r} is not allowed: data URIs must lie under the namespace's own prefix "
                f"or an allow-listed one ({allowed})"
            )


def _normalise(uri: str) -> str:
    """file:// paths are resolved (no `..` or symlink escapes); s3 keys are literal strings."""
    if uri.startswith("file://"):
        return "file://" + os.path.realpath(posixpath.normpath(uri[len("file://") :]))
    return uri


async def load_queries(
    source: DataSource | Mapping[str, Any],
    namespace: str,
    kube: KubeClient,
    open_uri: StoreOpener = open_store,
    policy: DataPolicy | None = None,
) -> list[dict[str, Any]]:
    """The queries of a data source (the model, or its resource form), as snake_case dicts."""
    src = _source(source)
    if src.inline is not None:
        return [q.to_api() for q in src.inline]
    # Parsing megabytes of JSON is CPU work: not on the event loop.
    return await parse_queries(await _read(src, namespace, kube, open_uri, policy))


async def count_queries(
    source: DataSource | Mapping[str, Any],
    namespace: str,
    kube: KubeClient,
    open_uri: StoreOpener = open_store,
    policy: DataPolicy | None = None,
) -> int:
    """How many queries the source holds, raising DataSourceError as `load_queries` does.

    The operator validates every job's data, and many jobs share one ConfigMap: a text already
    validated (by its digest) is not parsed again, which was a seventh of the operator's CPU at
    1000 jobs (bench/operator_scale.py). The read itself is never skipped."""
    src = _source(source)
    if src.inline is not None:
        return len(src.inline)
    text = await _read(src, namespace, kube, open_uri, policy)
    digest = hashlib.sha256(text.encode() if isinstance(text, str) else text).digest()
    known = _VALIDATED.get(digest)
    if known is None:
        try:
            known = len(await asyncio.to_thread(lambda: validate_queries(_parse(text))))
        except DataSourceError as exc:
            known = str(exc)
        if len(_VALIDATED) >= _VALIDATED_MAX:
            del _VALIDATED[next(iter(_VALIDATED))]  # oldest first: insertion order
        _VALIDATED[digest] = known
    if isinstance(known, str):
        raise DataSourceError(known)
    return known


_VALIDATED: dict[bytes, int | str] = {}  # digest of a data text -> query count or the error
_VALIDATED_MAX = 256


def _source(source: DataSource | Mapping[str, Any]) -> DataSource:
    try:
        return source if isinstance(source, DataSource) else DataSource.model_validate(source)
    except ValidationError as exc:
        raise DataSourceError(f"invalid data source: {exc.errors()[0]['msg']}") from exc


async def _read(
    src: DataSource, namespace: str, kube: KubeClient, open_uri: StoreOpener, policy: DataPolicy | None
) -> str | bytes:
    text: str | bytes
    if src.config_map_key_ref is not None:
        text = await _key_of(kube, CONFIGMAPS, namespace, src.config_map_key_ref)
    elif src.secret_key_ref is not None:
        text = await _key_of(kube, SECRETS, namespace, src.secret_key_ref)
    else:
        assert src.uri is not None  # the model requires exactly one source
        rules = policy or DataPolicy()
        rules.check(src.uri, namespace)
        text = await _bounded(asyncio.to_thread(_read_uri, src.uri, open_uri, rules.max_bytes), rules)
    return text


async def _bounded(read: Any, policy: DataPolicy) -> bytes:
    try:
        data: bytes = await asyncio.wait_for(read, policy.timeout_seconds)
    except TimeoutError:
        raise DataSourceError(f"reading the data took longer than {policy.timeout_seconds:g}s") from None
    return data


async def secret_text(kube: KubeClient, namespace: str, ref: KeySelector) -> str:
    """The key of a Secret labelled for TrainingJobs (DataSourceError if missing or unlabelled)."""
    return await _key_of(kube, SECRETS, namespace, ref)


async def parse_queries(text: str | bytes) -> list[dict[str, Any]]:
    """Queries from a JSON text, validated; parsed off the event loop."""
    return await asyncio.to_thread(lambda: validate_queries(_parse(text)))


def validate_queries(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise DataSourceError("data must be a JSON array of {query, expected_outcome} objects")
    queries = []
    for index, item in enumerate(raw):
        try:
            queries.append(TrainingQuery.model_validate(item).to_api())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DataSourceError(f"query [{index}] {where}: {first['msg']}") from exc
    return queries


def usable_secret(secret: Mapping[str, Any]) -> bool:
    """True if the Secret's owner labelled it for TrainingJobs (``labels.USABLE_BY_TRAININGJOBS``).

    Secrets are opt-in so that a job author cannot name, say, the pseudonym key or another job's
    credentials and have the trainer (running the author's image) read them."""
    meta_labels = (secret.get("metadata") or {}).get("labels") or {}
    return bool(meta_labels.get(labels.USABLE_BY_TRAININGJOBS) == labels.USABLE_VALUE)


def unlabelled_secret(name: str) -> str:
    return (
        f"Secret {name!r} is not labelled {labels.USABLE_BY_TRAININGJOBS}={labels.USABLE_VALUE}; "
        "only Secrets labelled for TrainingJobs may be referenced"
    )


async def _key_of(kube: KubeClient, res: Any, namespace: str, ref: KeySelector) -> str:
    kind = "ConfigMap" if res is CONFIGMAPS else "Secret"
    try:
        obj = await kube.get(res, ref.name, namespace)
    except ApiError as exc:
        if exc.status == 404:
            raise DataSourceError(f"{kind} {ref.name!r} not found") from exc
        raise
    if res is SECRETS and not usable_secret(obj):
        raise DataSourceError(unlabelled_secret(ref.name))
    data = obj.get("data") or {}  # ConfigMap/Secret data: a plain string map
    if ref.key not in data:
        raise DataSourceError(f"{kind} {ref.name!r} has no key {ref.key!r}")
    value = data[ref.key]
    return base64.b64decode(value).decode() if res is SECRETS else str(value)


def _read_uri(uri: str, open_uri: StoreOpener, max_bytes: int) -> bytes:
    base, _, key = uri.rpartition("/")
    try:
        return open_uri(base).get_bytes(key, max_bytes=max_bytes)
    except ObjectNotFound as exc:
        raise DataSourceError(f"object {uri!r} not found") from exc
    except ObjectTooLarge as exc:
        raise DataSourceError(f"object {uri!r} {exc}") from exc


def _parse(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataSourceError(f"data is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
