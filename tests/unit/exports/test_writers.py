"""Each writer, read back with a real reader; size limits; bounded memory."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import tracemalloc
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pypdf
import pytest

from agentcore.api.exports import ExportFormat
from agentcore.exports.schema import ChartSpec, Column, Kind
from agentcore.exports.writers import ExportTooLarge, ReportInfo, open_writer, writer_class
from agentcore.exports.writers.excel import ExcelWriter

COLUMNS = (
    Column("trajectory_id", Kind.STRING, "trajectory.id"),
    Column("iteration", Kind.INT, "trajectory.iteration"),
    Column("reward", Kind.FLOAT, "trajectory.reward"),
    Column("success", Kind.BOOL, "trajectory.success"),
    Column("created_at", Kind.TIMESTAMP, "trajectory.created_at"),
    Column("cost_usd", Kind.DECIMAL, "job.cost_usd"),
    Column("steps", Kind.JSON, "trajectory.steps"),
    Column("note", Kind.STRING, "trajectory.note"),
)
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
INFO = ReportInfo(
    "Reward report",
    [("Export type", "trajectories")],
    ChartSpec("Reward per iteration", "iteration", "reward"),
)


def row(i: int) -> tuple:
    return (
        f"t-{i}",
        i // 10,
        i / 100,
        i % 2 == 0,
        BASE + dt.timedelta(seconds=i),
        Decimal("12.50"),
        json.dumps([{"tool": "search", "n": i}]),
        None if i % 3 else f"note {i}",
    )


ROWS = [row(i) for i in range(250)]


def write(fmt: ExportFormat, path: Path, rows=ROWS, columns=COLUMNS, max_bytes=None, batch=100) -> Path:
    writer = open_writer(fmt, path, columns, INFO, max_bytes, "Apply filters")
    for start in range(0, len(rows), batch):
        writer.write(rows[start : start + batch])
    writer.finish([("Rows filtered", "0")])
    assert writer.rows == len(rows)
    return path


def test_json_lines(tmp_path):
    lines = write(ExportFormat.JSON, tmp_path / "x.json").read_text().splitlines()
    assert len(lines) == 250
    first = json.loads(lines[0])
    assert first == {
        "trajectory_id": "t-0",
        "iteration": 0,
        "reward": 0.0,
        "success": True,
        "created_at": "2026-01-01T00:00:00Z",
        "cost_usd": "12.50",  # money stays a decimal string
        "steps": [{"tool": "search", "n": 0}],  # JSON embedded as JSON, not as a string
        "note": "note 0",
    }
    assert json.loads(lines[1])["note"] is None


def test_json_non_finite_floats_become_null(tmp_path):
    cols = (Column("x", Kind.FLOAT, "x"),)
    path = write(ExportFormat.JSON, tmp_path / "x.json", [(math.nan,), (math.inf,), (1.5,)], cols)
    assert [json.loads(line)["x"] for line in path.read_text().splitlines()] == [None, None, 1.5]


def test_csv(tmp_path):
    with open(write(ExportFormat.CSV, tmp_path / "x.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 250
    assert rows[3] == {
        "trajectory_id": "t-3",
        "iteration": "0",
        "reward": "0.03",
        "success": "false",
        "created_at": "2026-01-01T00:00:03Z",
        "cost_usd": "12.50",
        "steps": '[{"tool": "search", "n": 3}]',
        "note": "note 3",
    }


def test_csv_neutralises_formulas(tmp_path):
    cols = (Column("q", Kind.STRING, "q"),)
    path = write(ExportFormat.CSV, tmp_path / "x.csv", [("=HYPERLINK(1)",), ("@SUM(A1)",), ("plain",)], cols)
    assert path.read_text().splitlines()[1:] == ["'=HYPERLINK(1)", "'@SUM(A1)", "plain"]


def test_parquet_explicit_schema_and_row_groups(tmp_path):
    cols = (*COLUMNS, Column("always_null", Kind.FLOAT, "x"))
    rows = [(*r, None) for r in ROWS]
    writer = writer_class(ExportFormat.PARQUET)(tmp_path / "x.parquet", cols, INFO, None, "")
    writer.row_group_rows = 100  # type: ignore[attr-defined]
    for start in range(0, 250, 50):
        writer.write(rows[start : start + 50])
    writer.finish([])
    meta = pq.ParquetFile(tmp_path / "x.parquet").metadata
    assert meta.num_rows == 250 and meta.num_row_groups == 3
    table = pq.read_table(tmp_path / "x.parquet")
    assert table.schema.field("always_null").type == pa.float64()  # not inferred as null
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("cost_usd").type == pa.decimal128(38, 10)
    first = table.slice(0, 1).to_pylist()[0]
    assert first["cost_usd"] == Decimal("12.5") and first["success"] is True
    assert first["created_at"] == BASE


def test_parquet_row_groups_are_bounded_by_bytes_for_wide_rows(tmp_path):
    from agentcore.exports.writers import parquet

    wide = [(*r[:6], "x" * 20_000, r[7]) for r in ROWS]  # 20 kB of steps per trajectory
    writer = writer_class(ExportFormat.PARQUET)(tmp_path / "x.parquet", COLUMNS, INFO, None, "")
    assert writer.row_group_rows == parquet.ROW_GROUP_ROWS > len(wide)  # type: ignore[attr-defined]
    writer.row_group_bytes = 1 << 20  # type: ignore[attr-defined]
    for start in range(0, 250, 10):
        writer.write(wide[start : start + 10])
        assert writer._pending_bytes < (1 << 20)  # type: ignore[attr-defined]
    writer.finish([])
    meta = pq.ParquetFile(tmp_path / "x.parquet").metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == 250 and max(sizes) <= 60  # 1 MiB / 20 kB = 52 rows, a 10-row batch over


def test_excel_summary_sheet_types_and_no_formulas(tmp_path):
    rows = [*ROWS[:3], ("=1+1", 1, 0.5, True, BASE, Decimal("1"), "[]", None)]
    path = write(ExportFormat.EXCEL, tmp_path / "x.xlsx", rows)
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Summary", "Reward report"]
    summary = list(book["Summary"].iter_rows(values_only=True))
    assert summary[0][0] == "Reward report" and ("Export type", "trajectories") in summary
    data = list(book["Reward report"].iter_rows(values_only=True))
    assert data[0] == tuple(c.name for c in COLUMNS)
    assert data[1][:6] == ("t-0", 0, 0, True, dt.datetime(2026, 1, 1), 12.5)
    assert data[4][0] == "=1+1"  # a string, not a formula


def test_excel_continues_on_a_new_sheet_past_the_row_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(ExcelWriter, "max_sheet_rows", 101)  # 100 data rows + header per sheet
    path = write(ExportFormat.EXCEL, tmp_path / "x.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Summary", "Reward report", "Reward report (2)", "Reward report (3)"]
    counts = [book[name].max_row - 1 for name in book.sheetnames[1:]]
    assert counts == [100, 100, 50]
    assert next(book["Reward report (3)"].iter_rows(min_row=2, values_only=True))[0] == "t-200"


def test_pdf_report_has_title_tables_and_a_chart(tmp_path):
    path = write(ExportFormat.PDF, tmp_path / "x.pdf")
    reader = pypdf.PdfReader(path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Reward report" in text and "Export details" in text and "Column statistics" in text
    assert "Reward per iteration" in text and "First 100 of 250 rows" in text
    assert "t-99" in text and "t-100" not in text.replace("t-100 ", "")
    stream = reader.pages[0].get_contents()
    assert stream is not None
    content = stream.get_data().decode("latin-1")
    assert content.count(" l") > 10  # the chart's line segments (polyline + axes + grid)


def test_the_pdf_rows_table_has_one_line_cells_and_its_header_on_every_page(tmp_path):
    long = "x" * 20 + "W" * 8  # 28 characters, wider than one of 8 cells at 7 pt
    rows = [(f"t-{i}", *[long] * 7) for i in range(100)]
    names = ["trajectory_id", *[f"label{j}" for j in range(7)]]
    columns = tuple(Column(name, Kind.STRING, f"t.{name}") for name in names)
    writer = open_writer(ExportFormat.PDF, tmp_path / "x.pdf", columns, ReportInfo("T"))
    writer.write(rows)
    writer.finish([])
    pages = [p.extract_text() for p in pypdf.PdfReader(tmp_path / "x.pdf").pages]
    table = [p for p in pages if "t-" in p]
    assert len(table) >= 2  # 100 rows of 4 mm do not fit one A4 landscape page
    for text in table:
        lines = text.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("trajectory_id"))
        assert lines[header] == " ".join(names)
        cells = [line.split() for line in lines[header + 1 :] if line.startswith("t-")]
        # one line per row: each long label is cut to its cell ("..."), not wrapped onto a second
        assert cells and all(len(c) == 8 for c in cells)
        assert all(label.endswith("...") and label.startswith("x" * 20) for c in cells for label in c[1:])
    shown = [line.split()[0] for text in table for line in text.splitlines() if line.startswith("t-")]
    assert shown == [f"t-{i}" for i in range(100)]


def test_a_cut_cell_text_fits_its_cell():
    from agentcore.exports.writers.pdf import _Report

    report = _Report("T")
    report.add_page()
    report.set_font("Helvetica", size=7)
    for text in ("", "short", "W" * 40, "0aab5d69b511c0084394f4e2a1b3c4d5"):
        cut = report.fit(text, 30)
        assert report.get_string_width(cut) <= 30 - 2 * report.c_margin
        assert cut == text or (cut.endswith("...") and text.startswith(cut[:-3]))


def test_pdf_bar_chart_of_counts(tmp_path):
    cols = (Column("action", Kind.STRING, "a"),)
    info = ReportInfo("Audit", [], ChartSpec("Entries per action", "action", "action", "bar", count=True))
    writer = open_writer(ExportFormat.PDF, tmp_path / "x.pdf", cols, info)
    writer.write([("create",), ("create",), ("delete",)])
    writer.finish([])
    text = pypdf.PdfReader(tmp_path / "x.pdf").pages[0].extract_text()
    assert "Entries per action" in text and "create" in text


@pytest.mark.parametrize("fmt", [ExportFormat.JSON, ExportFormat.CSV, ExportFormat.PARQUET])
def test_size_limit_enforced_while_writing(tmp_path, fmt):
    many = [row(i) for i in range(60_000)]
    with pytest.raises(ExportTooLarge) as exc:
        write(fmt, tmp_path / "x.out", many, max_bytes=200_000, batch=5_000)
    assert exc.value.during and exc.value.max_bytes == 200_000 and exc.value.suggestion == "Apply filters"


def test_size_limit_checked_on_the_final_file(tmp_path):
    with pytest.raises(ExportTooLarge):
        write(ExportFormat.EXCEL, tmp_path / "x.xlsx", max_bytes=1_000)


@pytest.mark.parametrize("fmt", [ExportFormat.JSON, ExportFormat.CSV, ExportFormat.PARQUET])
def test_memory_does_not_grow_with_rows(tmp_path, fmt):
    def peak(n: int) -> int:
        tracemalloc.start()
        writer = open_writer(fmt, tmp_path / f"m{n}", COLUMNS, INFO)
        for start in range(0, n, 1_000):
            writer.write([row(i) for i in range(start, min(n, start + 1_000))])
        writer.finish([])
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    # Ten times the rows, about the same peak (bench/export.py measures RSS at a million rows).
    small, large = peak(3_000), peak(30_000)
    assert large < small * 1.5 + 1_000_000, (small, large)


@pytest.mark.parametrize("fmt", [ExportFormat.CSV, ExportFormat.JSON])
def test_bytes_counted_while_writing_are_the_bytes_in_the_file(tmp_path, fmt):
    writer = open_writer(fmt, tmp_path / "x.out", COLUMNS, INFO, None, "")
    rows = [(f"ünï ☃ {i}", *row(i)[1:]) for i in range(250)]  # multi-byte text
    for start in range(0, len(rows), 100):
        writer.write(rows[start : start + 100])
        writer._file.flush()  # type: ignore[attr-defined]
        assert writer._bytes == (tmp_path / "x.out").stat().st_size  # type: ignore[attr-defined]
    writer.finish([])
    assert writer._bytes == (tmp_path / "x.out").stat().st_size  # type: ignore[attr-defined]


def test_the_pdf_reports_chart_and_statistics_match_a_plain_python_pass():
    import random
    from decimal import Decimal

    from agentcore.exports.writers import pdf

    rng = random.Random(3)
    odd = [1, 2.5, None, "n/a", Decimal("0.5"), True, 2**70]  # each sends numpy off its fast path

    def value(b: int) -> object:
        return rng.choice(odd) if b % 2 else rng.random()

    batches = [[(rng.randrange(40), rng.random() * 10, value(b)) for _ in range(300)] for b in range(4)]
    columns = (
        Column("iteration", Kind.INT, "t.i"),
        Column("reward", Kind.FLOAT, "t.r"),
        Column("mixed", Kind.FLOAT, "t.m"),
    )
    grouped = pdf._ChartData(ChartSpec("t", "iteration", "reward"), columns)
    looped = pdf._ChartData(ChartSpec("t", "iteration", "mixed"), columns)
    stats = {i: pdf._Stat() for i in range(3)}
    for batch in batches:
        arrays = pdf._Arrays(dict(enumerate(zip(*batch, strict=True))))
        grouped.add_columns(arrays)
        looped.add_columns(arrays)
        for i, stat in stats.items():
            stat.add_column(arrays[i], arrays.columns[i])
    rows = [r for b in batches for r in b]
    for chart, y in ((grouped, 1), (looped, 2)):
        expected: dict[int, list[float]] = {}
        for r in rows:
            if r[y] is not None and not isinstance(r[y], str):
                expected.setdefault(r[0], []).append(float(r[y]))
        assert dict(chart.points()) == pytest.approx({x: sum(v) / len(v) for x, v in expected.items()})
    for i, stat in stats.items():
        values = [float(r[i]) for r in rows if r[i] is not None and not isinstance(r[i], str)]
        assert (stat.count, stat.low, stat.high) == (len(values), min(values), max(values))
        assert stat.total == pytest.approx(sum(values))
    # Past MAX_CHART_KEYS distinct x values, rows are counted as omitted, as by the loop.
    small = pdf._ChartData(ChartSpec("t", "iteration", "reward"), columns)
    many = pdf.MAX_CHART_KEYS + 7
    small.add_columns(pdf._Arrays({0: list(range(many)), 1: [1.0] * many}))
    assert len(small.sums) == pdf.MAX_CHART_KEYS and small.omitted == 7


def test_timestamp_columns_are_formatted_as_iso_does_on_every_path():
    from zoneinfo import ZoneInfo

    from agentcore.exports.writers.base import iso
    from agentcore.exports.writers.text import _timestamps

    utc = [BASE + dt.timedelta(seconds=i, microseconds=i % 2) for i in range(5)]  # with and without µs
    columns = [
        utc,  # the fast path: UTC datetimes, no null
        [*utc, None],
        [v.replace(tzinfo=None) for v in utc],  # naive: stored UTC (SQLite)
        [v.astimezone(ZoneInfo("Europe/Paris")) for v in utc],
        [v.replace(tzinfo=ZoneInfo("UTC")) for v in utc],
    ]
    for values in columns:
        assert _timestamps(values) == [None if v is None else iso(v) for v in values]
    assert _timestamps(utc)[0] == "2026-01-01T00:00:00Z" and _timestamps(utc)[1].endswith(".000001Z")


@pytest.mark.parametrize("fmt", [ExportFormat.JSON, ExportFormat.CSV, ExportFormat.PARQUET])
def test_a_columnar_writer_writes_columns_as_it_writes_their_rows(tmp_path, fmt):
    by_rows = write(fmt, tmp_path / "rows.out")
    writer = open_writer(fmt, tmp_path / "columns.out", COLUMNS, INFO, None, "Apply filters")
    assert writer.read_columns() == tuple(range(len(COLUMNS)))
    for start in range(0, len(ROWS), 100):
        batch = ROWS[start : start + 100]
        writer.write_columns({i: [r[i] for r in batch] for i in range(len(COLUMNS))}, len(batch))
    writer.finish([("Rows filtered", "0")])
    if fmt == ExportFormat.PARQUET:
        assert pq.read_table(tmp_path / "columns.out").equals(pq.read_table(by_rows))
    else:
        assert (tmp_path / "columns.out").read_bytes() == by_rows.read_bytes()
