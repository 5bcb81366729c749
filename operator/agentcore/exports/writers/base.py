"""What every writer shares: the interface, the size guard, value formatting."""

from __future__ import annotations

import datetime as dt
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from agentcore.exports.schema import Batch, ChartSpec, Column

MB = 1024 * 1024


class ExportTooLarge(Exception):
    """The export would pass (``during=False``) or has passed (``during=True``) its size limit."""

    def __init__(self, size_bytes: int, max_bytes: int, suggestion: str, during: bool = False) -> None:
        self.size_bytes = size_bytes
        self.max_bytes = max_bytes
        self.suggestion = suggestion
        self.during = during
        verb = "exceeded" if during else "would exceed"
        super().__init__(
            f"Export {verb} size limit: {'at least ' if during else ''}{mb(size_bytes)} MB "
            f"of at most {mb(max_bytes)} MB. {suggestion}"
        )

    @property
    def estimated_size_mb(self) -> int:
        return mb(self.size_bytes)

    @property
    def max_size_mb(self) -> int:
        return mb(self.max_bytes)


def mb(size: int) -> int:
    return math.ceil(size / MB)


@dataclass
class ReportInfo:
    """Title and key facts for the formats that carry a human-readable summary (Excel, PDF)."""

    title: str
    details: list[tuple[str, str]] = field(default_factory=list)
    chart: ChartSpec | None = None
    notes: list[str] = field(default_factory=list)


class Writer(ABC):
    """Streams batches to ``path``; ``finish`` completes the file. Memory must not grow with rows."""

    def __init__(
        self,
        path: Path,
        columns: tuple[Column, ...],
        info: ReportInfo,
        max_bytes: int | None = None,
        suggestion: str = "",
    ) -> None:
        self.path = path
        self.columns = columns
        self.info = info
        self.max_bytes = max_bytes
        self.suggestion = suggestion
        self.rows = 0
        self._start()

    def _start(self) -> None:  # noqa: B027 - optional hook: most writers set up in __init__
        """Per-format set-up at the end of ``__init__`` (open the file, write a header)."""

    @abstractmethod
    def write(self, batch: Batch) -> None: ...

    def read_columns(self) -> tuple[int, ...] | None:
        """The columns the next batch is read for, or None: whole rows (a format that writes row
        by row). A writer answering columns gets them through ``write_columns``, so the pipeline
        neither rebuilds rows it would take apart again (the columnar writers) nor redacts
        columns it would not read (the PDF report past its table)."""
        return None

    def write_columns(self, columns: dict[int, Sequence[Any]], rows: int) -> None:
        """A batch of `rows` rows, given as the columns ``read_columns`` named."""
        raise NotImplementedError(f"{type(self).__name__} reads whole rows")

    @abstractmethod
    def finish(self, details: list[tuple[str, str]]) -> None:
        """Close the file; ``details`` are facts known only at the end (row counts, redaction)."""

    def abort(self) -> None:  # noqa: B027 - optional hook: most writers hold nothing to release
        """Release resources after a failure; the caller deletes the file."""

    def check_size(self, size: int) -> None:
        if self.max_bytes is not None and size > self.max_bytes:
            raise ExportTooLarge(size, self.max_bytes, self.suggestion, during=True)

    def final_size(self) -> int:
        size = self.path.stat().st_size
        self.check_size(size)
        return size


class ColumnWriter(Writer):
    """A format encoded column by column (the text encoders, Arrow arrays): it reads every column
    and takes them as columns; ``write`` of rows is the same through a transpose."""

    def read_columns(self) -> tuple[int, ...]:
        return tuple(range(len(self.columns)))

    def write(self, batch: Batch) -> None:
        if batch:
            self.write_columns(dict(enumerate(zip(*batch, strict=True))), len(batch))


def as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    return str(value)


def display(value: Any, width: int = 48) -> str:
    """Short human-readable text for report cells."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."
