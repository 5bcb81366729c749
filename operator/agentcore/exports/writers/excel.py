"""Excel (.xlsx) through XlsxWriter in constant-memory mode: each row is flushed to the sheet's
temporary XML as soon as the next row starts, so memory stays flat. Rows past Excel's limit of
1,048,576 per sheet continue on a new sheet ("Data (2)", ...). A "Summary" sheet comes first."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from agentcore.exports.schema import Batch, Column, Kind
from agentcore.exports.writers.base import ReportInfo, Writer, as_utc

EXCEL_MAX_ROWS = 1_048_576
MAX_STRING = 32_767  # Excel's cell limit; longer strings are truncated
_SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")

CellWriter = Callable[[Worksheet, int, int, Any], Any]


def sheet_name(title: str, part: int) -> str:
    base = _SHEET_NAME_BAD.sub(" ", title).strip()[:24] or "Data"
    return base if part == 1 else f"{base} ({part})"


class ExcelWriter(Writer):
    max_sheet_rows = EXCEL_MAX_ROWS  # tests lower it to see the overflow sheet

    def __init__(
        self,
        path: Path,
        columns: tuple[Column, ...],
        info: ReportInfo,
        max_bytes: int | None = None,
        suggestion: str = "",
    ) -> None:
        super().__init__(path, columns, info, max_bytes, suggestion)
        self._book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "tmpdir": str(path.parent),
                # Data is data: never turn a cell into a formula or link (spreadsheet injection).
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "remove_timezone": True,
            },
        )
        self._bold = self._book.add_format({"bold": True})
        self._date = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self._summary = self._book.add_worksheet("Summary")  # first tab, filled in finish()
        self._cells = [self._cell_writer(c.kind) for c in columns]
        self._sheets = 0
        self._sheet: Worksheet = self._new_sheet()
        self._row = 1

    def _cell_writer(self, kind: Kind) -> CellWriter:
        if kind in (Kind.INT, Kind.FLOAT):
            return _number
        if kind == Kind.DECIMAL:
            return lambda ws, r, c, v: ws.write_number(r, c, float(v))
        if kind == Kind.BOOL:
            return lambda ws, r, c, v: ws.write_boolean(r, c, bool(v))
        if kind == Kind.TIMESTAMP:
            date = self._date
            return lambda ws, r, c, v: ws.write_datetime(r, c, _naive_utc(v), date)
        return lambda ws, r, c, v: ws.write_string(r, c, str(v)[:MAX_STRING])

    def _new_sheet(self) -> Worksheet:
        self._sheets += 1
        sheet = self._book.add_worksheet(sheet_name(self.info.title, self._sheets))
        sheet.write_row(0, 0, [c.name for c in self.columns], self._bold)
        sheet.freeze_panes(1, 0)
        return sheet

    def write(self, batch: Batch) -> None:
        cells = self._cells
        for values in batch:
            if self._row >= self.max_sheet_rows:
                self._sheet = self._new_sheet()
                self._row = 1
            sheet, r = self._sheet, self._row
            for c, (value, cell) in enumerate(zip(values, cells, strict=True)):
                if value is not None:
                    cell(sheet, r, c, value)
            self._row += 1
        self.rows += len(batch)

    def finish(self, details: list[tuple[str, str]]) -> None:
        ws = self._summary
        ws.write_string(0, 0, self.info.title, self._bold)
        for r, (key, value) in enumerate([*self.info.details, *details], start=2):
            ws.write_string(r, 0, key, self._bold)
            ws.write_string(r, 1, value[:MAX_STRING])
        r = len(self.info.details) + len(details) + 3
        for note in self.info.notes:
            ws.write_string(r, 0, note[:MAX_STRING])
            r += 1
        ws.set_column(0, 0, 28)
        ws.set_column(1, 1, 60)
        self._book.close()
        self.final_size()

    def abort(self) -> None:
        # Already failing: a second error while closing must not hide the first.
        with contextlib.suppress(Exception):
            self._book.close()


def _number(ws: Worksheet, r: int, c: int, value: Any) -> Any:
    number = float(value)
    return ws.write_number(r, c, number) if math.isfinite(number) else ws.write_blank(r, c, None)


def _naive_utc(value: Any) -> dt.datetime:
    return as_utc(value).replace(tzinfo=None) if isinstance(value, dt.datetime) else value
