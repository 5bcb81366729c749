"""PDF report through fpdf2 (pure Python): title, export details, column statistics, a chart drawn
with fpdf2's primitives, and the first rows as a table.

A PDF is for reading, not for data transfer: every row streams through (statistics and the chart
cover all of them) but only the first ``max_table_rows`` are printed; the report says so. Memory
holds those rows, one accumulator per numeric column and one per distinct chart x value (capped).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
from fpdf import FPDF
from fpdf.fonts import FontFace
from numpy.typing import NDArray

from agentcore.exports.schema import Batch, ChartSpec, Column, Kind, Row
from agentcore.exports.writers.base import ReportInfo, Writer, display

MAX_TABLE_ROWS = 100
MAX_TABLE_COLUMNS = 8
MAX_CHART_KEYS = 5_000  # distinct x values kept; later ones are counted as omitted
MAX_BARS = 30
MAX_POINTS = 400
CHART_SPACE = 90  # mm: heading, plot, axis labels
GRID_LINE = 4  # mm: a table row's height
HEADING_FILL = (225, 230, 240)
_NUMERIC = (Kind.INT, Kind.FLOAT, Kind.DECIMAL)


def latin1(text: str) -> str:
    # The built-in PDF fonts cover Latin-1 only; anything else is shown as "?".
    return text.encode("latin-1", "replace").decode("latin-1")


@dataclass
class _Stat:
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add_column(self, array: NDArray[Any], values: Sequence[Any]) -> None:
        """One column of a batch at once: `array` is numpy's reading of `values`."""
        numbers = _numbers(array, values)
        if numbers.size:
            self.count += int(numbers.size)
            self.total += float(numbers.sum())
            self.low = min(self.low, float(numbers.min()))
            self.high = max(self.high, float(numbers.max()))


_NUMBER_KINDS = "biuf"  # numpy dtype kinds: bool, int, unsigned, float


def _numbers(array: NDArray[Any], values: Sequence[Any]) -> NDArray[np.float64]:
    """The column's numbers as floats, nulls and text left out. numpy infers one dtype for the
    whole list in C: a numeric one only when every value is a number (None or a str makes it
    object or text), so the per-value loop runs only for such columns."""
    if array.dtype.kind in _NUMBER_KINDS:
        return array.astype(np.float64, copy=False)
    return np.array([float(v) for v in values if v is not None and not isinstance(v, str)], dtype=np.float64)


class _Arrays:
    """A batch's columns, each read into numpy once, when first asked for (the statistics and
    the chart share the chart's columns)."""

    def __init__(self, columns: dict[int, Sequence[Any]]) -> None:
        self.columns = columns
        self._arrays: dict[int, NDArray[Any]] = {}

    def __getitem__(self, i: int) -> NDArray[Any]:
        array = self._arrays.get(i)
        if array is None:
            array = self._arrays[i] = np.asarray(self.columns[i])
        return array


class _ChartData:
    def __init__(self, spec: ChartSpec, columns: tuple[Column, ...]) -> None:
        names = [c.name for c in columns]
        self.spec = spec
        self.ok = spec.x in names and spec.y in names
        self.xi = names.index(spec.x) if self.ok else 0
        self.yi = names.index(spec.y) if self.ok else 0
        self.sums: dict[Any, list[float]] = {}
        self.omitted = 0

    def add_columns(self, batch: _Arrays) -> None:
        if (
            self.spec.kind == "line"
            and not self.spec.count
            and self.spec.include is None
            and self._grouped(batch[self.xi], batch[self.yi])
        ):
            return
        xs, ys = batch.columns[self.xi], batch.columns[self.yi]
        sums, include, count = self.sums, self.spec.include, self.spec.count
        for x, y in zip(xs, ys, strict=True):
            if count:
                y = 1.0
            if x is None or y is None or isinstance(y, str) or (include is not None and not include(x)):
                continue
            acc = sums.get(x) or self._new_key(x, 1)
            if acc is None:
                continue
            acc[0] += float(y)  # a Decimal does not add to a float
            acc[1] += 1

    def _new_key(self, x: Any, rows: int) -> list[float] | None:
        """The accumulator of an x value not seen before, or None (its `rows` counted as omitted)
        once MAX_CHART_KEYS distinct values are kept."""
        if len(self.sums) >= MAX_CHART_KEYS:
            self.omitted += rows
            return None
        acc = self.sums[x] = [0.0, 0.0]
        return acc

    def _grouped(self, xs: NDArray[Any], ys: NDArray[Any]) -> bool:
        """The loop below for integer x and numeric y, grouped by numpy (the common chart: a
        metric per iteration); False when the batch needs the loop. Line charts only: their keys
        are sorted for drawing, so the order in which a batch adds them does not matter."""
        if xs.dtype.kind != "i" or ys.dtype.kind not in "iuf":
            return False
        keys, inverse = np.unique(xs, return_inverse=True)
        totals = np.bincount(inverse, weights=ys.astype(np.float64, copy=False))
        counts = np.bincount(inverse)
        for key, total, n in zip(keys.tolist(), totals.tolist(), counts.tolist(), strict=True):
            acc = self.sums.get(key) or self._new_key(key, n)
            if acc is None:
                continue
            acc[0] += total
            acc[1] += n
        return True

    def points(self) -> list[tuple[Any, float]]:
        keys = list(self.sums)
        if self.spec.kind == "line":
            keys.sort(key=_sort_key)
        if self.spec.count:
            return [(k, self.sums[k][1]) for k in keys]
        return [(k, self.sums[k][0] / self.sums[k][1]) for k in keys]


def _sort_key(value: Any) -> Any:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))


class PdfWriter(Writer):
    max_table_rows = MAX_TABLE_ROWS

    def __init__(
        self,
        path: Path,
        columns: tuple[Column, ...],
        info: ReportInfo,
        max_bytes: int | None = None,
        suggestion: str = "",
    ) -> None:
        super().__init__(path, columns, info, max_bytes, suggestion)
        self._head: list[Row] = []
        self._numeric = [
            i for i, c in enumerate(columns) if c.kind in _NUMERIC and not c.name.endswith("_id")
        ]
        self._stats = {i: _Stat() for i in self._numeric}
        self._chart = _ChartData(info.chart, columns) if info.chart else None
        read = set(self._numeric)
        if self._chart is not None and self._chart.ok:
            read |= {self._chart.xi, self._chart.yi}
        self._read = tuple(sorted(read))

    def read_columns(self) -> tuple[int, ...] | None:
        """Once the table's rows are in, only the statistics' and the chart's columns are read."""
        return self._read if len(self._head) >= self.max_table_rows else None

    def write(self, batch: Batch) -> None:
        room = self.max_table_rows - len(self._head)
        if room > 0:
            self._head.extend(batch[:room])
        # Only the columns the statistics and the chart read, each one C-level map.
        self.write_columns({i: list(map(itemgetter(i), batch)) for i in self._read}, len(batch))

    def write_columns(self, columns: dict[int, Sequence[Any]], rows: int) -> None:
        if rows:
            arrays = _Arrays(columns)
            for i, stat in self._stats.items():
                stat.add_column(arrays[i], columns[i])
            chart = self._chart
            if chart is not None and chart.ok:
                chart.add_columns(arrays)
        self.rows += rows

    def finish(self, details: list[tuple[str, str]]) -> None:
        pdf = _Report(self.info.title)
        pdf.add_page()
        pdf.heading(self.info.title, size=18)
        pdf.set_font("Helvetica", size=9)
        generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        pdf.cell(0, 6, latin1(f"Generated {generated}"), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.heading("Export details")
        pdf.key_values([*self.info.details, *details, ("Rows", str(self.rows))])
        self._statistics(pdf)
        self._draw_chart(pdf)
        self._table(pdf)
        for note in self.info.notes:
            pdf.set_font("Helvetica", "I", 8)
            pdf.multi_cell(0, 5, latin1(note), new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(self.path))
        self.final_size()

    def _statistics(self, pdf: _Report) -> None:
        rows = [
            [self.columns[i].name, str(s.count), display(s.total / s.count), display(s.low), display(s.high)]
            for i, s in self._stats.items()
            if s.count
        ]
        if rows:
            pdf.heading("Column statistics (all rows)")
            pdf.grid(["column", "count", "mean", "min", "max"], rows)

    def _draw_chart(self, pdf: _Report) -> None:
        chart = self._chart
        if chart is None or not chart.ok:
            return
        points = chart.points()
        if pdf.get_y() + CHART_SPACE > pdf.h - pdf.b_margin:
            pdf.add_page()  # keep the heading with its chart
        pdf.heading(chart.spec.title)
        if not points:
            pdf.set_font("Helvetica", "I", 9)
            pdf.cell(0, 6, "No data to plot.", new_x="LMARGIN", new_y="NEXT")
            return
        if chart.spec.kind == "bar":
            pdf.bar_chart(points[:MAX_BARS], "rows" if chart.spec.count else f"mean {chart.spec.y}")
            if len(points) > MAX_BARS:
                pdf.note(f"First {MAX_BARS} of {len(points)} categories shown.")
        else:
            pdf.line_chart(_thin(points), chart.spec.x, chart.spec.y)
        if chart.omitted:
            pdf.note(f"{chart.omitted} rows beyond {MAX_CHART_KEYS} distinct x values are not plotted.")

    def _table(self, pdf: _Report) -> None:
        if not self._head:
            return
        shown = [i for i, c in enumerate(self.columns) if c.kind != Kind.JSON][:MAX_TABLE_COLUMNS]
        pdf.add_page()
        pdf.heading(f"First {len(self._head)} of {self.rows} rows")
        header = [self.columns[i].name for i in shown]
        rows = [[display(row[i], 28) for i in shown] for row in self._head]
        pdf.line_grid(header, rows)
        hidden = [c.name for i, c in enumerate(self.columns) if i not in shown]
        if hidden:
            pdf.note(f"Columns not shown here: {', '.join(hidden)} (see the csv, json or parquet formats).")


def _thin(points: list[tuple[Any, float]]) -> list[tuple[Any, float]]:
    """At most MAX_POINTS points: average neighbours so the line keeps its shape."""
    if len(points) <= MAX_POINTS:
        return points
    step = math.ceil(len(points) / MAX_POINTS)
    out = []
    for start in range(0, len(points), step):
        chunk = points[start : start + step]
        out.append((chunk[0][0], sum(p[1] for p in chunk) / len(chunk)))
    return out


class _Report(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="landscape", format="A4")
        self.set_title(latin1(title))
        self.set_creator("agentcore exporter")
        self.set_auto_page_break(auto=True, margin=12)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("Helvetica", "I", 7)
        self.cell(0, 5, f"Page {self.page_no()}", align="R")

    def heading(self, text: str, size: int = 12) -> None:
        self.set_font("Helvetica", "B", size)
        self.cell(0, size * 0.6, latin1(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def note(self, text: str) -> None:
        self.set_font("Helvetica", "I", 8)
        self.multi_cell(0, 4, latin1(text), new_x="LMARGIN", new_y="NEXT")

    def key_values(self, items: list[tuple[str, str]]) -> None:
        self.grid(["", ""], [[k, v] for k, v in items], headings=False, widths=(50, 170))

    def grid(
        self,
        header: list[str],
        rows: list[list[str]],
        headings: bool = True,
        widths: tuple[int, ...] | None = None,
    ) -> None:
        self.set_font("Helvetica", size=7)
        self.set_fill_color(255, 255, 255)  # the charts change it; table cells would inherit it
        self.set_text_color(0, 0, 0)
        data = ([header] if headings else []) + rows
        with self.table(
            col_widths=widths,
            first_row_as_headings=headings,
            headings_style=FontFace(emphasis="BOLD", fill_color=HEADING_FILL),
            line_height=4,
            text_align="LEFT",
        ) as table:
            for values in data:
                row = table.row()
                for value in values:
                    row.cell(latin1(value))
        self.ln(3)

    def line_grid(self, header: list[str], rows: list[list[str]]) -> None:
        """A table of one-line cells, each text cut to fit its cell, the header repeated on every
        page. The rows table is the one big table of the report: ``grid`` (fpdf's table layout,
        which breaks every cell's text into lines, twice) took 0.3 s for its 100 rows, as long
        as the rest of a 200,000-row export."""
        width = (self.w - self.l_margin - self.r_margin) / len(header)
        self.set_draw_color(0, 0, 0)
        self.set_text_color(0, 0, 0)
        self._line_grid_row(header, width, heading=True)
        for values in rows:
            if self.will_page_break(GRID_LINE):
                self.add_page()
                self._line_grid_row(header, width, heading=True)
            self._line_grid_row(values, width)
        self.ln(3)

    def _line_grid_row(self, values: list[str], width: float, heading: bool = False) -> None:
        self.set_font("Helvetica", "B" if heading else "", 7)
        self.set_fill_color(*HEADING_FILL)
        for value in values:
            self.cell(width, GRID_LINE, self.fit(latin1(value), width), border=1, fill=heading)
        self.ln(GRID_LINE)

    def fit(self, text: str, width: float) -> str:
        """`text`, cut (with "...") to fit a cell `width` wide in the current font."""
        room = width - 2 * self.c_margin
        if self.get_string_width(text) <= room:
            return text
        while text and self.get_string_width(text + "...") > room:
            text = text[:-1]
        return text + "..."

    # -- charts, drawn with lines and rectangles ---------------------------------------------
    def _frame(
        self, values: list[float], height: float = 60
    ) -> tuple[float, float, float, float, float, float]:
        x0, y0 = self.l_margin + 14, self.get_y() + 2
        width = self.w - self.l_margin - self.r_margin - 20
        low, high = min(0.0, *values), max(0.0, *values)
        if high == low:
            high = low + 1
        self.set_draw_color(120, 120, 120)
        self.line(x0, y0, x0, y0 + height)
        self.line(x0, y0 + height, x0 + width, y0 + height)
        self.set_font("Helvetica", size=6)
        for i in range(5):
            value = low + (high - low) * i / 4
            y = y0 + height - height * i / 4
            self.set_xy(self.l_margin, y - 1.5)
            self.cell(13, 3, display(value), align="R")
            self.set_draw_color(225, 225, 225)
            self.line(x0 + 0.5, y, x0 + width, y)
        return x0, y0, width, height, low, high

    def line_chart(self, points: list[tuple[Any, float]], x_name: str, y_name: str) -> None:
        x0, y0, width, height, low, high = self._frame([p[1] for p in points])
        n = max(len(points) - 1, 1)
        coords = [
            (x0 + width * i / n, y0 + height - height * (v - low) / (high - low))
            for i, (_, v) in enumerate(points)
        ]
        self.set_draw_color(30, 90, 200)
        self.set_line_width(0.5)
        if len(coords) == 1:
            self.circle(coords[0][0] - 0.8, coords[0][1] - 0.8, 1.6, style="F")
        else:
            self.polyline(coords)
        self.set_line_width(0.2)
        self.set_font("Helvetica", size=6)
        for i in (0, len(points) // 2, len(points) - 1):
            self.set_xy(coords[i][0] - 10, y0 + height + 1)
            self.cell(20, 3, latin1(display(points[i][0], 16)), align="C")
        self.set_xy(x0, y0 + height + 5)
        self.set_font("Helvetica", "I", 7)
        self.cell(width, 4, latin1(f"mean {y_name} per {x_name}"), align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(3)

    def bar_chart(self, points: list[tuple[Any, float]], y_name: str) -> None:
        x0, y0, width, height, low, high = self._frame([p[1] for p in points])
        slot = width / len(points)
        zero = y0 + height - height * (0 - low) / (high - low)
        self.set_fill_color(30, 90, 200)
        self.set_font("Helvetica", size=5)
        for i, (label, value) in enumerate(points):
            top = y0 + height - height * (value - low) / (high - low)
            left = x0 + slot * i + slot * 0.15
            self.rect(left, min(top, zero), slot * 0.7, abs(zero - top) or 0.2, style="F")
            self.set_xy(x0 + slot * i, y0 + height + 1)
            self.cell(slot, 3, latin1(display(label, max(4, int(slot / 1.3)))), align="C")
        self.set_xy(x0, y0 + height + 5)
        self.set_font("Helvetica", "I", 7)
        self.cell(width, 4, latin1(y_name), align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(3)
