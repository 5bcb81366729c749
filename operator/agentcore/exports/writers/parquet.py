"""Apache Parquet through pyarrow's ParquetWriter: an explicit schema (never inferred from the first
rows, so an all-null column keeps its type) and row groups of bounded size, written as they fill."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from agentcore.exports.schema import Column, Kind
from agentcore.exports.writers.base import MB, ColumnWriter, ReportInfo, as_utc

ROW_GROUP_ROWS = 50_000  # a multiple of the database batch size: full row groups
# ...or fewer, once the pending rows hold this much Arrow data: what the writer holds stays bounded
# however wide the rows (an LLM trajectory's steps run to kilobytes; 50,000 of them would not).
ROW_GROUP_BYTES = 4 * MB
_MONEY = pa.decimal128(38, 10)
_MONEY_QUANTUM = Decimal("1e-10")

ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOL: pa.bool_(),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    Kind.DECIMAL: _MONEY,
    Kind.JSON: pa.string(),  # JSON text; readers parse it when they need the structure
}


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.kind], nullable=True) for c in columns])


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(_MONEY_QUANTUM)


def _timestamp(value: Any) -> Any:
    return None if value is None else as_utc(value)


class ParquetWriter(ColumnWriter):
    def __init__(
        self,
        path: Path,
        columns: tuple[Column, ...],
        info: ReportInfo,
        max_bytes: int | None = None,
        suggestion: str = "",
        row_group_rows: int = ROW_GROUP_ROWS,
        row_group_bytes: int = ROW_GROUP_BYTES,
    ) -> None:
        super().__init__(path, columns, info, max_bytes, suggestion)
        self.schema = arrow_schema(columns)
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression="zstd")
        # Pending data is kept as Arrow record batches (compact columnar buffers), not Python rows.
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def _record_batch(self, columns: dict[int, Sequence[Any]]) -> pa.RecordBatch:
        arrays = []
        for i, (column, field) in enumerate(zip(self.columns, self.schema, strict=True)):
            values = columns[i]
            if column.kind == Kind.DECIMAL:
                values = tuple(_money(v) for v in values)
            elif column.kind == Kind.TIMESTAMP:
                values = tuple(_timestamp(v) for v in values)
            arrays.append(pa.array(values, type=field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def write_columns(self, columns: dict[int, Sequence[Any]], rows: int) -> None:
        if not rows:
            return
        record_batch = self._record_batch(columns)
        self._pending.append(record_batch)
        self._pending_rows += rows
        self._pending_bytes += record_batch.nbytes
        self.rows += rows
        if self._pending_rows >= self.row_group_rows or self._pending_bytes >= self.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        self._writer.write_table(table, row_group_size=self.row_group_rows)
        self.check_size(self._sink.tell())

    def finish(self, details: list[tuple[str, str]]) -> None:
        self._flush()
        self._writer.close()
        self._sink.close()
        self.final_size()

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self._sink.close()
