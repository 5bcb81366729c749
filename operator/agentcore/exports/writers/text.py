"""JSON Lines and CSV: one pass, one encoded chunk per batch, exact byte counting.

Batches are encoded column by column: for the common case (a column without nulls) the C-level
``map`` of a built-in encoder does the work, which is what keeps these writers near the speed of
the bare ``json``/``csv`` modules while still producing typed output (ISO timestamps, money as
decimal strings, JSON embedded as JSON, no NaN, no spreadsheet formulas).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import repeat
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import Any, BinaryIO

from agentcore.exports.schema import Kind
from agentcore.exports.writers.base import ColumnWriter, iso

Encoder = Callable[[Any], Any]
_BUFFER = 1 << 20
_NON_FINITE = frozenset({"nan", "inf", "-inf"})
_BOOLS = {True: "true", False: "false"}


def _json_string(value: Any) -> str:
    return str(encode_basestring_ascii(value if isinstance(value, str) else str(value)))


def _json_float(value: Any) -> str:
    number = float(value)
    return repr(number) if math.isfinite(number) else "null"  # JSON has no NaN/Infinity


def _json_raw(value: Any) -> str:
    # JSON columns arrive as JSON text from the database; anything else is serialised here.
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _quoted(text: str | None) -> str:
    return "null" if text is None else '"' + text + '"'


def _decimal(value: Any) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


_TZINFO = attrgetter("tzinfo")


def _timestamps(values: Sequence[Any]) -> list[Any]:
    """ISO 8601 in UTC with a "Z" (``iso``). The usual column, UTC datetimes without a null (what
    the database driver returns), is formatted by C-level maps and one replace over the batch."""
    if (
        None not in values
        and set(map(type, values)) == {dt.datetime}
        and set(map(_TZINFO, values)) == {dt.UTC}
    ):
        text = "\n".join(map(dt.datetime.isoformat, values))  # "+00:00" ends each, and only there
        return text.replace("+00:00", "Z").split("\n")
    return [None if v is None else iso(v) for v in values]


def _encode(values: Sequence[Any], slow: Encoder, fast: Encoder | None, null: Any) -> list[Any]:
    """One column of a batch: `fast` mapped in C when there is no null, else `slow` per value."""
    if fast is not None and None not in values:
        try:
            return list(map(fast, values))
        except (TypeError, ValueError):  # an unexpected type: the careful path handles it
            pass
    return [null if v is None else slow(v) for v in values]


def _floats(values: Sequence[Any], slow: Encoder, bad: str) -> list[Any]:
    out = _encode(values, slow, float.__repr__, bad if bad else None)
    if _NON_FINITE.isdisjoint(out):
        return out
    return [bad if v in _NON_FINITE else v for v in out]


# (per-value encoder, C-level encoder for null-free columns or None); floats and timestamps have
# column functions of their own
_JSON: dict[Kind, tuple[Encoder, Encoder | None]] = {
    Kind.STRING: (_json_string, encode_basestring_ascii),
    Kind.INT: (lambda v: str(int(v)), int.__repr__),
    Kind.BOOL: (lambda v: "true" if v else "false", _BOOLS.__getitem__),
    Kind.DECIMAL: (lambda v: _quoted(_decimal(v)), None),
    Kind.JSON: (_json_raw, None),
}


class _FileWriter(ColumnWriter):
    """A format written straight to one file: the bytes written so far bound the export's size."""

    def _start(self) -> None:
        self._file: BinaryIO = open(self.path, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed in finish/abort
        self._bytes = 0

    def _emit(self, data: bytes) -> None:
        self._file.write(data)
        self._bytes += len(data)

    def _wrote(self, rows: int) -> None:
        self.rows += rows
        self.check_size(self._bytes)

    def finish(self, details: list[tuple[str, str]]) -> None:
        self._file.close()
        self.final_size()

    def abort(self) -> None:
        self._file.close()


class JsonLinesWriter(_FileWriter):
    """One JSON object per line (RFC 8259 values, UTF-8, "\\n"); money as decimal strings."""

    def _start(self) -> None:
        super()._start()
        names = enumerate(c.name for c in self.columns)
        self._prefixes = [("{" if i == 0 else ",") + json.dumps(name) + ":" for i, name in names]

    def _column(self, i: int, values: Sequence[Any]) -> list[str]:
        kind = self.columns[i].kind
        if kind == Kind.TIMESTAMP:
            encoded = list(map(_quoted, _timestamps(values)))
        elif kind == Kind.FLOAT:
            encoded = _floats(values, _json_float, "null")
        else:
            encoded = _encode(values, *_JSON[kind], "null")
        return list(map(self._prefixes[i].__add__, encoded))

    def write_columns(self, columns: dict[int, Sequence[Any]], rows: int) -> None:
        if not rows:
            return
        encoded = [self._column(i, columns[i]) for i in range(len(self.columns))]
        self._emit(("}\n".join(map("".join, zip(*encoded, strict=True))) + "}\n").encode("utf-8"))
        self._wrote(rows)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_string(value: Any) -> Any:
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_strings(values: Sequence[Any]) -> list[Any]:
    # Spreadsheets execute cells starting like a formula (CSV injection, OWASP): neutralise them.
    if None not in values:
        try:
            risky = list(map(str.startswith, values, repeat(_FORMULA_START)))
        except TypeError:
            risky = [True]
        if not any(risky):
            return list(values)
    return [None if v is None else _csv_string(v) for v in values]


_CSV: dict[Kind, tuple[Encoder, Encoder | None]] = {
    Kind.BOOL: (lambda v: "true" if v else "false", _BOOLS.__getitem__),
    Kind.DECIMAL: (_decimal, None),
    Kind.JSON: (_json_raw, None),
}


class CsvWriter(_FileWriter):
    """RFC 4180 CSV with a header row, UTF-8, CRLF line ends (what csv.writer and Excel expect).

    csv.writer writes through a text layer straight into the file's buffer (no copy of each batch
    through a StringIO and a separate encode); the buffer's position is the exact byte count."""

    def _start(self) -> None:
        super()._start()
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="", write_through=True)
        self._csv = csv.writer(self._text)
        self._csv.writerow([c.name for c in self.columns])
        self._bytes = self._file.tell()

    def _column(self, i: int, values: Sequence[Any]) -> Sequence[Any]:
        kind = self.columns[i].kind
        if kind == Kind.STRING:
            return _csv_strings(values)
        if kind == Kind.FLOAT:
            return _floats(values, lambda v: repr(float(v)), "")
        if kind == Kind.TIMESTAMP:
            return _timestamps(values)
        if kind in _CSV:
            slow, fast = _CSV[kind]
            return _encode(values, slow, fast, None)
        return values

    def write_columns(self, columns: dict[int, Sequence[Any]], rows: int) -> None:
        if not rows:
            return
        encoded = [self._column(i, columns[i]) for i in range(len(self.columns))]
        self._csv.writerows(zip(*encoded, strict=True))
        self._bytes = self._file.tell()
        self._wrote(rows)

    def finish(self, details: list[tuple[str, str]]) -> None:
        self._text.detach()  # the file is closed below, once
        super().finish(details)

    def abort(self) -> None:
        self._text.detach()
        super().abort()
