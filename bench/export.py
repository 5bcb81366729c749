"""Export throughput and memory: rows/s and peak RSS per format, at the full and anonymized levels,
next to the bare writer library writing the same rows (the ratio is our overhead: redaction,
typed conversion, size guard, the thread hand-off), and peak RSS at a small vs a large row count
(it must stay flat).

    python bench/export.py                       # 1,000,000 trajectories (takes a while)
    python bench/export.py --rows 200000 --small 20000 --formats csv,parquet

Every measurement runs in its own process, so each peak RSS (ru_maxrss of that child) is its own.
Rows are trajectory-like (ids, a ~90-character query, a ~200-character JSON step list, rewards,
a timestamp) and generated on the fly from a few templates, identically for both sides, so the
source costs the same and holds no memory. ``--database-url`` streams them from PostgreSQL instead
(seeded once per namespace with generate_series), which adds the read path to our side.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

BATCH = 5_000
FORMATS = ("json", "csv", "parquet", "excel", "pdf")
LEVELS = ("full", "anonymized")
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


# --- the rows -------------------------------------------------------------------------------------


def _templates() -> list[tuple[Any, ...]]:
    out = []
    for t in range(64):
        steps = [
            {
                "action": {"tool": "search", "params": {"q": f"flights to city {t}"}},
                "observation": "3 results",
            },
            {"action": {"tool": "book", "params": {"id": t}}, "observation": "booked"},
        ]
        out.append(
            (
                f"Find me a flight from city {t} to city {t + 1} next Tuesday, window seat, under $400",
                json.dumps(steps),
            )
        )
    return out


def rows(n: int) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of trajectory rows in the export's column order."""
    templates = _templates()
    job = "5f0c3b1e-2a4d-4c1b-9d7e-000000000001"
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(n, start + BATCH)):
            query, steps = templates[i % 64]
            batch.append(
                (
                    f"{i:08x}-0000-4000-8000-000000000000",
                    job,
                    "bench-job",
                    f"agent-{i % 97}",
                    i // 1000,
                    (i % 1000) // 8,
                    i % 8,
                    query,
                    steps,
                    (i % 101) / 100,
                    ((i % 101) - 50) / 50,
                    ((i % 13) - 6) / 6,
                    i % 3 != 0,
                    100 + i % 5000,
                    None if i % 50 else "tool timeout",
                    BASE + dt.timedelta(milliseconds=i),
                )
            )
        yield batch


async def arows(n: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    for batch in rows(n):
        yield batch
        await asyncio.sleep(0)  # a database driver yields to the loop between batches too


# --- our pipeline -----------------------------------------------------------------------------------


async def ours(fmt: str, level: str, n: int, path: Path, database_url: str | None) -> int:
    from agentcore.api.exports import ExportFormat, ExportJobSpec, PrivacyLevel
    from agentcore.exports import pipeline, sources
    from agentcore.exports.redaction import plan_redaction
    from agentcore.exports.rules import PII_STANDARD
    from agentcore.exports.schema import ChartSpec, Dataset
    from agentcore.exports.writers import ReportInfo

    pipeline.max_bytes = lambda fmt: 1 << 60  # measure the writers, not the spec's limits
    rule = None if level == "full" else PII_STANDARD
    key = b"bench-key-0123456789abcdef012345"
    if database_url:
        from agentcore.storage.db import make_engine

        engine = make_engine(database_url)
        spec = ExportJobSpec.model_validate(
            {"exportType": "trajectories", "config": {"format": fmt, "privacyLevel": level}}
        )
        prepared = await pipeline.prepare(
            sources.SourceContext(f"bench-{n}", spec, engine), "Bench", rule, key
        )
    else:
        dataset = Dataset(
            "Trajectories",
            sources.TRAJECTORY_COLUMNS,
            arows(n),
            ChartSpec("Reward per iteration", "iteration", "reward"),
            estimated_rows=n,
        )
        plan = plan_redaction(dataset.columns, PrivacyLevel(level), rule, key)
        prepared = pipeline.Prepared(dataset, plan, ReportInfo("Bench", [], dataset.chart), None)
    written = await pipeline.write(prepared, ExportFormat(fmt), path)
    if database_url:
        await engine.dispose()
    return written.rows


# --- the bare libraries -----------------------------------------------------------------------------


def raw(fmt: str, n: int, path: Path) -> int:
    return {
        "json": _raw_json,
        "csv": _raw_csv,
        "parquet": _raw_parquet,
        "excel": _raw_excel,
        "pdf": _raw_pdf,
    }[fmt](n, path)


NAMES = [
    "trajectory_id",
    "job_id",
    "job_name",
    "agent_id",
    "iteration",
    "group_index",
    "sample_index",
    "query",
    "steps",
    "reward",
    "normalized_reward",
    "advantage",
    "success",
    "execution_time_ms",
    "error",
    "created_at",
]


def _raw_json(n: int, path: Path) -> int:
    with open(path, "w") as fh:
        for batch in rows(n):
            fh.writelines(json.dumps(dict(zip(NAMES, r, strict=True)), default=str) + "\n" for r in batch)
    return n


def _raw_csv(n: int, path: Path) -> int:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(NAMES)
        for batch in rows(n):
            writer.writerows(batch)
    return n


def _raw_parquet(n: int, path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = [pa.string()] * 4 + [pa.int64()] * 3 + [pa.string()] * 2 + [pa.float64()] * 3
    types += [pa.bool_(), pa.int64(), pa.string(), pa.timestamp("us", tz="UTC")]
    schema = pa.schema(list(zip(NAMES, types, strict=True)))
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        pending = []
        for batch in rows(n):
            cols = list(zip(*batch, strict=True))
            pending.append(
                pa.RecordBatch.from_arrays(
                    [pa.array(c, t) for c, t in zip(cols, types, strict=True)], schema=schema
                )
            )
            if len(pending) == 10:
                writer.write_table(pa.Table.from_batches(pending))
                pending = []
        if pending:
            writer.write_table(pa.Table.from_batches(pending))
    return n


def _raw_excel(n: int, path: Path) -> int:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "remove_timezone": True})
    sheet, r = book.add_worksheet("Data"), 1
    sheet.write_row(0, 0, NAMES)
    for batch in rows(n):
        for values in batch:
            if r >= 1_048_576:
                sheet, r = book.add_worksheet(f"Data {book.worksheets().__len__()}"), 1
            sheet.write_row(r, 0, values)
            r += 1
    book.close()
    return n


def _raw_pdf(n: int, path: Path) -> int:
    """What any report needs: one pass for the chart's per-iteration means, a 100-row table."""
    from fpdf import FPDF

    sums: dict[int, list[float]] = {}
    head: list[tuple[Any, ...]] = []
    for batch in rows(n):
        if len(head) < 100:
            head.extend(batch[: 100 - len(head)])
        for r in batch:
            acc = sums.setdefault(r[4], [0.0, 0.0])
            acc[0] += r[9]
            acc[1] += 1
    pdf = FPDF(orientation="landscape")
    pdf.add_page()
    pdf.set_font("Helvetica", size=7)
    with pdf.table() as table:
        for r in [tuple(NAMES[:8]), *head]:
            row = table.row()
            for v in r[:8]:
                row.cell(str(v)[:28])
    pdf.output(str(path))
    return n


# --- driver -----------------------------------------------------------------------------------------


def _preload(fmt: str, mode: str) -> None:
    """Import what the measured code needs first: interpreter and library start-up is not writing."""
    import importlib

    libraries = {
        "json": [],
        "csv": [],
        "parquet": ["pyarrow.parquet"],
        "excel": ["xlsxwriter"],
        "pdf": ["fpdf"],
    }
    for name in libraries[fmt]:
        importlib.import_module(name)
    if mode != "raw":
        from agentcore.api.exports import ExportFormat
        from agentcore.exports import pipeline, sources  # noqa: F401
        from agentcore.exports.writers import writer_class

        writer_class(ExportFormat(fmt))


def child(args: argparse.Namespace) -> None:
    if args.mode != "raw":  # our side runs in a process set up as the exporter's is
        from agentcore.exports.cli import configure_process

        configure_process()
    _preload(args.format, args.mode)
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        path = Path(tmp) / f"out.{args.format}"
        started = time.perf_counter()
        if args.mode == "raw":
            count = raw(args.format, args.rows, path)
        else:
            count = asyncio.run(ours(args.format, args.mode, args.rows, path, args.database_url))
        seconds = time.perf_counter() - started
        print(json.dumps({"rows": count, "seconds": seconds, "bytes": path.stat().st_size}))


def measure(fmt: str, mode: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--format", fmt, "--mode", mode, "--rows", str(n)]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if args.tmpdir:
        cmd += ["--tmpdir", args.tmpdir]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd} failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["rows_per_s"] = result["rows"] / result["seconds"]
    return result


async def seed(database_url: str, n: int) -> None:
    """Trajectory rows in namespace bench-<n> (once), for --database-url runs."""
    from sqlalchemy import text

    from agentcore.storage.db import make_engine
    from agentcore.storage.migrate import upgrade

    engine = make_engine(database_url)
    await upgrade(engine)
    async with engine.begin() as conn:
        ns = f"bench-{n}"
        have = (
            await conn.execute(text("select count(*) from trajectories where namespace = :ns"), {"ns": ns})
        ).scalar()
        if not have:
            await conn.execute(
                text(
                    "insert into trajectories select md5(:ns || g::text), 'bench-job-id', 'bench-job', :ns,"
                    " 'agent-' || (g % 97), g / 1000, (g % 1000) / 8, g % 8,"
                    " 'Find me a flight from city ' || (g % 64) || ' next Tuesday, window seat, under $400',"
                    ' cast(\'[{"action": {"tool": "search", "params": {"q": "flights"}}, '
                    '"observation": "3 results"}, {"action": {"tool": "book"}, "observation": "booked"}]\''
                    " as json), (g % 101) / 100.0, 0, 0, g % 3 <> 0, 100 + g % 5000,"
                    " case when g % 50 = 0 then 'tool timeout' end,"
                    " timestamptz '2026-01-01' + g * interval '1 millisecond' from generate_series(1, :n) g"
                ),
                {"ns": ns, "n": n},
            )
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="row count of the RSS comparison")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--database-url", help="stream from PostgreSQL instead of generated rows")
    parser.add_argument("--tmpdir", help="where the files are written (default: the system temp dir)")
    parser.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.database_url:
        for n in {args.rows, args.small}:
            asyncio.run(seed(args.database_url, n))
    results = []
    header = (
        f"{'format':8} {'level':10} {'rows/s':>9} {'raw rows/s':>10} {'ratio':>6} {'MB':>8} "
        f"{'RSS MB':>7} {'RSS @small':>10}"
    )
    print(f"{args.rows:,} trajectories; RSS @small = peak RSS at {args.small:,} rows\n{header}")
    for fmt in args.formats.split(","):
        base = measure(fmt, "raw", args.rows, args)
        for level in LEVELS:
            big = measure(fmt, level, args.rows, args)
            small = measure(fmt, level, args.small, args)
            ratio = base["rows_per_s"] / big["rows_per_s"]
            line = (
                f"{fmt:8} {level:10} {big['rows_per_s']:9,.0f} {base['rows_per_s']:10,.0f} {ratio:6.2f} "
                f"{big['bytes'] / 1e6:8.1f} {big['peak_rss_mb']:7.0f} {small['peak_rss_mb']:10.0f}"
            )
            print(line, flush=True)
            results.append(
                {"format": fmt, "level": level, "ours": big, "raw": base, "small": small, "ratio": ratio}
            )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
