"""The shape of exported data: typed columns with redaction field paths, and a dataset (columns plus
a stream of row batches). Rows are tuples in column order: cheaper than dicts at a million rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

Row = Sequence[Any]
Batch = Sequence[Row]


class Kind(StrEnum):
    """Value type of a column; each writer maps it to its own types (e.g. Arrow types)."""

    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    DECIMAL = "decimal"  # money: Decimal in Python, never a binary float in text formats
    JSON = "json"  # JSON text (already serialised): embedded as-is in JSON Lines


@dataclass(frozen=True)
class Column:
    """One output column.

    ``path`` is the field path redaction rules address (``agent.id``, ``trajectory.query``).
    ``free_text`` marks user-written text (queries, tool payloads, error messages) that may hold
    anything; ``pii`` marks identifiers of people or their agents. Both are protected beyond the
    ``full`` level whatever the rule says.
    """

    name: str
    kind: Kind
    path: str
    free_text: bool = False
    pii: bool = False
    group_size: bool = False  # the number of source records behind an aggregated row (k-anonymity)


@dataclass(frozen=True)
class ChartSpec:
    """What the PDF report plots: mean of ``y`` (or the row count) per ``x``; a line for ordered x,
    bars for categories."""

    title: str
    x: str
    y: str
    kind: str = "line"  # "line" or "bar"
    include: Callable[[Any], bool] | None = None  # keep only rows whose x passes
    count: bool = False  # plot the number of rows per x instead of the mean of y


@dataclass
class Dataset:
    """Columns plus a one-shot async stream of row batches."""

    title: str
    columns: tuple[Column, ...]
    batches: AsyncIterator[Batch]
    chart: ChartSpec | None = None
    estimated_rows: int | None = None
    column_bytes: dict[str, float] = field(default_factory=dict)  # average value sizes, for estimates
    notes: list[str] = field(default_factory=list)

    def index(self, name: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.name == name)

    def with_batches(self, batches: AsyncIterator[Batch]) -> Dataset:
        return replace(self, batches=batches)


async def batched(rows: Sequence[Row], size: int = 1000) -> AsyncIterator[Batch]:
    """Rows already in memory (small, Kubernetes-sourced tables) as a batch stream."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
