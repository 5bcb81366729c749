"""Load TrainingQuery lists from a TrainingJob's data source: inline, a ConfigMap or Secret key,
or an object-store URI. Used by the operator (to validate before starting) and by the trainer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from agentcore.api.training import TrainingQuery
from agentcore.kube.client import CONFIGMAPS, SECRETS, ApiError, KubeClient
from agentcore.storage.objectstore import ObjectNotFound, ObjectStore, open_store

StoreOpener = Callable[[str], ObjectStore]


class DataSourceError(ValueError):
    """The source cannot be read or does not hold valid queries; the message says which and why."""


async def load_queries(
    source: dict[str, Any], namespace: str, kube: KubeClient, open_uri: StoreOpener = open_store
) -> list[dict[str, Any]]:
    if "inline" in source:
        raw: Any = source["inline"]
    elif "configMapKeyRef" in source:
        raw = _parse(await _key_of(kube, CONFIGMAPS, namespace, source["configMapKeyRef"]))
    elif "secretKeyRef" in source:
        raw = _parse(await _key_of(kube, SECRETS, namespace, source["secretKeyRef"]))
    elif "uri" in source:
        raw = _parse(await asyncio.to_thread(_read_uri, source["uri"], open_uri))
    else:
        raise DataSourceError("data source names none of inline, configMapKeyRef, secretKeyRef, uri")
    return validate_queries(raw)


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


async def _key_of(kube: KubeClient, res: Any, namespace: str, ref: dict[str, str]) -> str:
    kind = "ConfigMap" if res is CONFIGMAPS else "Secret"
    try:
        obj = await kube.get(res, ref["name"], namespace)
    except ApiError as exc:
        if exc.status == 404:
            raise DataSourceError(f"{kind} {ref['name']!r} not found") from exc
        raise
    data = obj.get("data") or {}
    if ref["key"] not in data:
        raise DataSourceError(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
    value = data[ref["key"]]
    return base64.b64decode(value).decode() if res is SECRETS else str(value)


def _read_uri(uri: str, open_uri: StoreOpener) -> bytes:
    base, _, key = uri.rpartition("/")
    try:
        return open_uri(base).get_bytes(key)
    except ObjectNotFound as exc:
        raise DataSourceError(f"object {uri!r} not found") from exc


def _parse(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataSourceError(f"data is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
