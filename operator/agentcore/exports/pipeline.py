"""From an ExportJob spec to a file: dataset → redaction → writer, with the size limit checked
before the work (estimate) and during it (bytes written).

The event loop streams from the database and redacts; each batch is written by a worker thread
while the next one is fetched, so file I/O never blocks the loop and both sides overlap.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agentcore.api.exports import (
    EXPORT_TYPE_DESCRIPTIONS,
    FORMATS,
    ExportFormat,
    ExportJobSpec,
    PrivacyLevel,
)
from agentcore.exports.redaction import DIGEST_HEX_CHARS, RedactionPlan, plan_redaction
from agentcore.exports.rules import RedactionRule
from agentcore.exports.schema import Batch, Column, Dataset, Kind
from agentcore.exports.sources import SourceContext, build_dataset
from agentcore.exports.writers import ExportTooLarge, ReportInfo, Writer, open_writer
from agentcore.exports.writers.base import MB

MAX_EXPORT_BYTES = 1000 * MB  # the spec's "Max export size: 1 GB per export"
DEFAULT_SUGGESTION = "Apply filters or reduce telemetry resolution"

# Bytes of a value by kind when the source gives no measured average.
_KIND_BYTES = {
    Kind.STRING: 16.0,
    Kind.INT: 6.0,
    Kind.FLOAT: 18.0,
    Kind.BOOL: 5.0,
    Kind.TIMESTAMP: 27.0,
    Kind.DECIMAL: 8.0,
    Kind.JSON: 64.0,
}
# Output size relative to the CSV-like size of the values (measured on trajectory-like rows):
# Parquet compresses columns, xlsx is zipped XML. PDF prints a bounded report: not estimated.
_FORMAT_FACTOR = {
    ExportFormat.JSON: 1.0,
    ExportFormat.CSV: 1.0,
    ExportFormat.PARQUET: 0.35,
    ExportFormat.EXCEL: 0.6,
}


class ExportCancelled(Exception):
    pass


def max_bytes(fmt: ExportFormat) -> int:
    return min(FORMATS[fmt].max_size_mb * MB, MAX_EXPORT_BYTES)


def estimate_bytes(fmt: ExportFormat, dataset: Dataset, plan: RedactionPlan) -> int | None:
    """Rows times average row size in this format, or None where it cannot be estimated."""
    if dataset.estimated_rows is None or fmt not in _FORMAT_FACTOR:
        return None
    redacted = set(plan.fields_redacted)
    per_row = 0.0
    for column in plan.columns:
        if column.path in redacted:
            per_row += DIGEST_HEX_CHARS  # pseudonyms and labels: at most a digest long
        else:
            per_row += dataset.column_bytes.get(column.name, _KIND_BYTES[column.kind])
    if fmt == ExportFormat.JSON:
        per_row += sum(len(c.name) + 4 for c in plan.columns) + 2
    else:
        per_row += len(plan.columns) + 1
    return int(dataset.estimated_rows * per_row * _FORMAT_FACTOR[fmt])


def suggestion(fmt: ExportFormat, dataset: Dataset, plan: RedactionPlan) -> str:
    """The spec's suggestion, plus formats whose limit the export would fit."""
    fits = []
    for other in ExportFormat:
        size = estimate_bytes(other, dataset, plan)
        if other != fmt and size is not None and size <= max_bytes(other):
            fits.append(f"{other.value} (max {FORMATS[other].max_size_mb} MB)")
    text = DEFAULT_SUGGESTION
    return f"{text}, or choose the {' or '.join(fits)} format" if fits else text


def check_estimate(fmt: ExportFormat, dataset: Dataset, plan: RedactionPlan) -> int | None:
    size = estimate_bytes(fmt, dataset, plan)
    if size is not None and size > max_bytes(fmt):
        raise ExportTooLarge(size, max_bytes(fmt), suggestion(fmt, dataset, plan))
    return size


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(display_name: str, fmt: ExportFormat) -> str:
    """The spec's download name: "Weekly Report Export" → "Weekly_Report_Export.xlsx"."""
    stem = _UNSAFE.sub("_", display_name).strip("._-")[:120] or "export"
    return stem + FORMATS[fmt].extension


def content_disposition(name: str) -> str:
    # `name` is already ASCII-safe (file_name), so no RFC 5987 encoding is needed.
    return f'attachment; filename="{name}"'


@dataclass
class Prepared:
    dataset: Dataset
    plan: RedactionPlan
    info: ReportInfo
    estimated_bytes: int | None


def describe(spec: ExportJobSpec, namespace: str, title: str, plan: RedactionPlan) -> list[tuple[str, str]]:
    cfg = spec.config
    details = [
        ("Project (namespace)", namespace),
        ("Export type", f"{spec.export_type.value}: {EXPORT_TYPE_DESCRIPTIONS[spec.export_type]}"),
        ("Format", FORMATS[cfg.format].name),
        ("Privacy level", cfg.privacy_level.value),
    ]
    if cfg.privacy_level != PrivacyLevel.FULL:
        details.append(("Redaction rule", cfg.redaction_rule))
    if cfg.privacy_level == PrivacyLevel.AGGREGATED:
        details.append(("Minimum group size (k)", str(cfg.k_anonymity)))
    if cfg.date_range:
        details.append(
            ("Date range", f"{cfg.date_range.start.isoformat()} to {cfg.date_range.end.isoformat()}")
        )
    if cfg.filters:
        details.append(("Filters", _describe_filters(spec)))
    if cfg.telemetry_resolution:
        details.append(("Telemetry resolution", f"{cfg.telemetry_resolution} iterations"))
    return details


def _describe_filters(spec: ExportJobSpec) -> str:
    """Filter values can be identifiers (agent ids): below the full level only their count shows."""
    assert spec.config.filters is not None
    values = spec.config.filters.model_dump(exclude_none=True)
    if spec.config.privacy_level == PrivacyLevel.FULL:
        return json.dumps(values)
    shown = [
        f"{k}: {len(v)} value(s)" if isinstance(v, list) else f"{k}={json.dumps(v)}"
        for k, v in values.items()
    ]
    return "; ".join(shown)


async def prepare(ctx: SourceContext, title: str, rule: RedactionRule | None, key: bytes | None) -> Prepared:
    """Build the dataset and the redaction plan; raise ExportTooLarge if the estimate says so."""
    cfg = ctx.config
    dataset = await build_dataset(ctx)
    plan = plan_redaction(dataset.columns, cfg.privacy_level, rule, key, cfg.k_anonymity)
    size = check_estimate(cfg.format, dataset, plan)
    info = ReportInfo(
        title, describe(ctx.spec, ctx.namespace, title, plan), dataset.chart, list(dataset.notes)
    )
    return Prepared(dataset, plan, info, size)


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int
    size_bytes: int
    fields_redacted: tuple[str, ...]
    rows_filtered: int


async def write(
    prepared: Prepared, fmt: ExportFormat, path: Path, cancelled: Callable[[], bool] = lambda: False
) -> Written:
    dataset, plan = prepared.dataset, prepared.plan
    limit = max_bytes(fmt)
    writer = await asyncio.to_thread(
        open_writer, fmt, path, plan.columns, prepared.info, limit, suggestion(fmt, dataset, plan)
    )
    pending: Awaitable[None] | None = None
    try:
        async for batch in dataset.batches:
            if cancelled():
                raise ExportCancelled()
            work = _redacted(plan, writer, batch)
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(work))
        if pending is not None:
            await pending
            pending = None
        details = _final_details(plan)
        await asyncio.to_thread(writer.finish, details)
    except BaseException:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        await asyncio.to_thread(_discard, writer, path)
        raise
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    return Written(path, writer.rows, size, plan.fields_redacted, plan.rows_filtered)


def _redacted(plan: RedactionPlan, writer: Writer, batch: Batch) -> Callable[[], None]:
    """The writer's call for one batch, redacted. Asked while the previous batch may still be
    being written: a writer only narrows what it reads (the PDF's table, once full, stays full),
    so an early answer of whole rows is the safe one."""
    wanted = writer.read_columns()
    if wanted is None:
        return partial(writer.write, plan.apply(batch))
    selected = plan.select(batch, wanted)
    return partial(writer.write_columns, selected.columns, selected.rows)


def _discard(writer: Writer, path: Path) -> None:
    writer.abort()
    path.unlink(missing_ok=True)


def _final_details(plan: RedactionPlan) -> list[tuple[str, str]]:
    details = [("Fields redacted", ", ".join(plan.fields_redacted) or "none")]
    details.append(("Rows filtered (groups below k)", str(plan.rows_filtered)))
    return details


def output_columns(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns]
