"""Applying privacy levels and redaction rules to rows.

Pseudonyms are HMAC-SHA256 under the tenant's key (a Secret per namespace), truncated to 128 bits
(32 hex digits): the same id maps to the same pseudonym in every export of one tenant, and to a
different one under another tenant's key; without the key a dictionary of guessable ids is useless.

Per level:

- ``full``: rows unchanged (the REST layer requires the admin role for it).
- ``anonymized`` / ``aggregated``: the rule's actions apply to the columns whose path they match;
  identifiers marked PII that the rule does not mention are hashed anyway, and free-text columns
  are dropped unless the rule turns them into a constant or a pseudonym. So a custom rule chooses
  how PII is protected, never whether.
- ``aggregated`` also suppresses rows (groups) built from fewer than k source records.
- ``summary`` datasets carry metrics only; the same checks run as a safety net.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from numbers import Real
from operator import itemgetter
from typing import Any, NamedTuple

from agentcore.api.exports import PrivacyLevel
from agentcore.exports.rules import Action, FieldRule, RedactionRule
from agentcore.exports.schema import Batch, Column, Kind

MIN_KEY_BYTES = 16
DIGEST_HEX_CHARS = 32  # 128 bits
OTHER_BUCKET = "other"

Transform = Callable[[Any], Any]


class Pseudonymizer:
    """Keyed, deterministic pseudonyms. A bounded cache helps with ids that repeat on every row
    (agent ids) without letting memory grow with the number of distinct values."""

    def __init__(self, key: bytes, cache_size: int = 1 << 16) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the pseudonymisation key must have at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self._cached = lru_cache(maxsize=cache_size)(self._digest)

    def _digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:DIGEST_HEX_CHARS]

    def __call__(self, value: Any) -> str | None:
        return None if value is None else self._cached(str(value))

    def column(self, values: Sequence[Any]) -> Sequence[Any]:
        if None not in values:  # the usual case: map in C, no Python call per value
            return list(map(self._cached, map(str, values)))
        return [self(v) for v in values]


def _fmt(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


def bucketer(buckets: Sequence[tuple[float, float | None]]) -> Transform:
    """Map a number to its bucket's label ("18-25", "200001+"); anything else to "other"."""
    labels = [f"{_fmt(lo)}+" if hi is None else f"{_fmt(lo)}-{_fmt(hi)}" for lo, hi in buckets]

    def to_bucket(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Real):
            return OTHER_BUCKET
        value = float(value)
        for (lo, hi), label in zip(buckets, labels, strict=True):
            if value >= lo and (hi is None or value <= hi):
                return label
        return OTHER_BUCKET

    return to_bucket


class _Constant:
    """Every value becomes `text` (a null stays null: it carried nothing)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, value: Any) -> str | None:
        return None if value is None else self.text

    def column(self, values: Sequence[Any]) -> Sequence[Any]:
        return [self.text] * len(values) if None not in values else [self(v) for v in values]


def _constant(text: str) -> Transform:
    return _Constant(text)


def find_rule(rule: RedactionRule | None, path: str) -> FieldRule | None:
    if rule is None:
        return None
    return next((f for f in rule.fields if fnmatch.fnmatchcase(path, f.path)), None)


def _transform(field: FieldRule, hasher: Pseudonymizer) -> Transform | None:
    """None means: drop the column."""
    if field.action == Action.HASH:
        return hasher
    if field.action == Action.REPLACE:
        return _constant(field.value or "")
    if field.action == Action.REDACT:
        return _constant(field.replacement) if field.replacement is not None else None
    return bucketer(field.buckets or [])


_CONSTANT_ACTIONS = (Action.HASH, Action.REPLACE, Action.REDACT)


def column_treatment(
    column: Column, rule: RedactionRule | None, hasher: Pseudonymizer
) -> tuple[bool, Transform | None]:
    """(keep?, transform) for one column beyond the full level."""
    field = find_rule(rule, column.path)
    # Free text can hold anything: only a constant or a pseudonym of it may leave.
    if column.free_text and (field is None or field.action not in _CONSTANT_ACTIONS):
        return False, None
    if field is not None:
        fn = _transform(field, hasher)
        return fn is not None, fn
    if column.pii:
        return True, hasher
    return True, None


class Selected(NamedTuple):
    """Some columns of a redacted batch (``RedactionPlan.select``) and its row count."""

    rows: int
    columns: dict[int, Sequence[Any]]


ColumnFn = Callable[[Sequence[Any]], Sequence[Any]]


def column_fn(fn: Transform) -> ColumnFn:
    """A per-value transform applied to a whole column (its fast form where it has one)."""
    fast: ColumnFn | None = getattr(fn, "column", None)
    return fast if fast is not None else (lambda values: [fn(v) for v in values])


@dataclass
class RedactionPlan:
    """Applied batch by batch, column by column: a projection and a few column transforms, with
    rows rebuilt by ``zip`` (C) instead of a Python loop per row."""

    columns: tuple[Column, ...]  # what the writer receives
    fields_redacted: tuple[str, ...]
    _ops: list[tuple[int, ColumnFn | None]] | None  # (source column, transform); None: unchanged
    _size_index: int | None
    k: int

    rows_filtered: int = 0

    def apply(self, batch: Batch) -> Batch:
        """The batch as the writer receives it."""
        if self._size_index is not None:
            batch = self._suppress_small_groups(batch)
        if self._ops is None or not batch:
            return batch
        source = list(zip(*batch, strict=True))
        out = [source[i] if fn is None else fn(source[i]) for i, fn in self._ops]
        return list(zip(*out, strict=True))

    def select(self, batch: Batch, wanted: Sequence[int]) -> Selected:
        """The `wanted` output columns of what ``apply`` would give, as columns: the others are
        neither transformed nor rebuilt into rows. Many columns come from one transpose, a few
        from one C-level map each."""
        if self._size_index is not None:
            batch = self._suppress_small_groups(batch)
        if not batch:
            return Selected(0, {at: [] for at in wanted})
        ops = [(at, None) if self._ops is None else self._ops[at] for at in wanted]
        values: list[Sequence[Any]]
        if len(wanted) * 3 >= len(batch[0]):
            transposed = list(zip(*batch, strict=True))
            values = [transposed[i] for i, _ in ops]
        else:
            values = [list(map(itemgetter(i), batch)) for i, _ in ops]
        columns = {at: v if fn is None else fn(v) for at, (_, fn), v in zip(wanted, ops, values, strict=True)}
        return Selected(len(batch), columns)

    def _suppress_small_groups(self, batch: Batch) -> Batch:
        idx, k = self._size_index, self.k
        assert idx is not None
        kept = [row for row in batch if (row[idx] or 0) >= k]
        self.rows_filtered += len(batch) - len(kept)
        return kept


def plan_redaction(
    columns: tuple[Column, ...],
    level: PrivacyLevel,
    rule: RedactionRule | None,
    key: bytes | None,
    k: int = 5,
) -> RedactionPlan:
    """Decide per column once; the per-row work is then a projection plus a few calls."""
    size_index = next((i for i, c in enumerate(columns) if c.group_size), None)
    suppress = size_index if level == PrivacyLevel.AGGREGATED else None
    if level == PrivacyLevel.FULL:
        return RedactionPlan(columns, (), None, suppress, k)
    if key is None:
        raise ValueError(f"the {level.value} level needs the tenant's pseudonymisation key")
    if rule is not None:
        rule.check_level(level)
    hasher = Pseudonymizer(key)
    ops: list[tuple[int, ColumnFn | None]] = []
    out: list[Column] = []
    redacted: list[str] = []
    for i, column in enumerate(columns):
        keep, fn = column_treatment(column, rule, hasher)
        if not keep or fn is not None:
            redacted.append(column.path)
        if not keep:
            continue
        if fn is not None:
            column = Column(column.name, Kind.STRING, column.path, group_size=column.group_size)
        ops.append((i, column_fn(fn) if fn is not None else None))
        out.append(column)
    unchanged = [i for i, _ in ops] == list(range(len(columns))) and all(fn is None for _, fn in ops)
    # Suppression looks at the source row (before any action could touch the group size).
    return RedactionPlan(tuple(out), tuple(dict.fromkeys(redacted)), None if unchanged else ops, suppress, k)
