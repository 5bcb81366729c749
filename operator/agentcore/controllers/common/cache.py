"""Informer-style stores: the newest body of each object the watches (and our own writes) showed.

A reconcile reads its TrainingJob and Job from here instead of GETting them: kopf already streams
every change, and every write returns the object as stored, so a GET per event only repeats what
the process has seen (it was two of the operator's three calls per event; bench/operator_scale.py).
Staleness is the watch's lag, the same race a GET has with a concurrent writer, and the
controller is level-triggered: the next event brings the next state. What a store never saw is
not assumed absent by the reconciler (it falls back to a GET), except where creating is safe
anyway (creates are idempotent and check ownership on 409).

Entries only move forward: an event delivered after our own write's response (both carry the
object) must not bring back the older body. resourceVersion is opaque by the API conventions, so
it is compared as an integer only when both are integers (etcd revisions, as every apiserver we
know of returns them); otherwise the later arrival wins, which is what an informer does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from agentcore.api.common import ObjectMeta


class _HasMeta(Protocol):
    @property
    def metadata(self) -> ObjectMeta: ...


M = TypeVar("M", bound=_HasMeta)
Key = tuple[str, str]  # (namespace, name)


def newer(candidate: str | None, current: str | None) -> bool:
    """True unless `candidate` is known to be older than `current`."""
    if candidate is None or current is None:
        return True
    if candidate.isdigit() and current.isdigit():
        return int(candidate) >= int(current)
    return True


class Store(Generic[M]):
    """Parsed objects by (namespace, name), newest resourceVersion kept."""

    def __init__(self, parse: Callable[[Mapping[str, Any]], M]) -> None:
        self._parse = parse
        self._items: dict[Key, M] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, namespace: str, name: str) -> M | None:
        return self._items.get((namespace, name))

    def observe(self, raw: Mapping[str, Any], name: str | None = None) -> M:
        """Keep `raw` (parsed) unless an entry at least as new is stored; returns what is stored.
        `name` keys the entry under another name (e.g. a child under its owner's)."""
        obj = self._parse(raw)
        return self.put(obj, name)

    def put(self, obj: M, name: str | None = None) -> M:
        key = (obj.metadata.namespace or "", name or obj.metadata.name or "")
        current = self._items.get(key)
        if current is not None and not newer(
            obj.metadata.resource_version, current.metadata.resource_version
        ):
            return current
        self._items[key] = obj
        return obj

    def forget(self, namespace: str, name: str) -> None:
        self._items.pop((namespace, name), None)
