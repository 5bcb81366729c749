"""One writer per format of the spec's formats table, all streaming batch by batch.

Writer modules are imported on first use: an export pod loads only its own format's library
(fpdf2 and pyarrow alone take about a second to import).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from agentcore.api.exports import ExportFormat
from agentcore.exports.schema import Column
from agentcore.exports.writers.base import ExportTooLarge, ReportInfo, Writer

WRITERS: dict[ExportFormat, str] = {
    ExportFormat.JSON: "agentcore.exports.writers.text:JsonLinesWriter",
    ExportFormat.CSV: "agentcore.exports.writers.text:CsvWriter",
    ExportFormat.PARQUET: "agentcore.exports.writers.parquet:ParquetWriter",
    ExportFormat.EXCEL: "agentcore.exports.writers.excel:ExcelWriter",
    ExportFormat.PDF: "agentcore.exports.writers.pdf:PdfWriter",
}


def writer_class(fmt: ExportFormat) -> type[Writer]:
    module, name = WRITERS[fmt].split(":")
    cls: type[Writer] = getattr(importlib.import_module(module), name)
    return cls


def open_writer(
    fmt: ExportFormat,
    path: Path,
    columns: tuple[Column, ...],
    info: ReportInfo,
    max_bytes: int | None = None,
    suggestion: str = "",
) -> Writer:
    return writer_class(fmt)(path, columns, info, max_bytes, suggestion)


__all__ = ["WRITERS", "ExportTooLarge", "ReportInfo", "Writer", "open_writer", "writer_class"]
