"""The file formats of an export: CSV, JSON lines and Parquet, written batch by batch.

Each writer turns rows (tuples in the kind's column order) into bytes as they come, so an export
of years of data never holds more than one batch: `begin()` gives the first bytes (a header),
`write(rows)` the bytes of one batch, `finish()` the last bytes (Parquet's footer). Types as in
`stekker.export.records.ColumnType`.

CSV is for spreadsheets: a header row, RFC 4180 quoting, and a text cell that starts with
`=`, `+`, `-`, `@`, a tab or a carriage return and is not a number gets a leading apostrophe,
so a spreadsheet shows it instead of running it as a formula (a station id, a tariff note or a
station's free text is anyone's input). JSON lines and Parquet carry every value unchanged.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import UTC
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

import orjson
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from stekker.export.records import Column, ColumnType

Row = Sequence[Any]


class ExportFormat(StrEnum):
    """The formats an export can be written in."""

    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


_FORMULA_START = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(text: str) -> str:
    """`text` as a CSV cell no spreadsheet runs as a formula (numbers stay numbers)."""
    if text and text[0] in _FORMULA_START and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def utc_text(moment: Any) -> str:
    """A UTC datetime (naive means UTC) as ISO 8601 with `Z` (microseconds only when there are any)."""
    text: str = moment.isoformat()
    if moment.tzinfo is None:
        return text + "Z"
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return utc_text(moment.astimezone(UTC).replace(tzinfo=None))


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Writer:
    """Base class of the export formats: bytes for a header, for each batch, for the end.

    Contract: call `begin()` once, then `write(rows)` for every batch, then `finish()` once;
    send every result in that order. Rows have the values of `columns`, in that order, as read
    from the database (datetimes in UTC, naive meaning UTC; Decimals; dicts for JSON). A writer keeps no
    rows between calls. `metadata` are key/value facts about the export that a format can
    carry inside the file (Parquet does).
    """

    media_type: ClassVar[str]
    extension: ClassVar[str]

    def __init__(self, columns: Sequence[Column], metadata: dict[str, str] | None = None) -> None:
        self.columns = tuple(columns)
        self.metadata = dict(metadata or {})

    def begin(self) -> bytes:
        return b""

    def write(self, rows: Sequence[Row]) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        return b""


class CsvWriter(Writer):
    """CSV (RFC 4180, UTF-8, CRLF) with a header row of the column names; empty cell: null."""

    media_type = "text/csv; charset=utf-8"
    extension = "csv"

    def __init__(self, columns: Sequence[Column], metadata: dict[str, str] | None = None) -> None:
        super().__init__(columns, metadata)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        by_type = {t: [i for i, c in enumerate(self.columns) if c.type is t] for t in ColumnType}
        self._text = by_type[ColumnType.TEXT]
        self._times = by_type[ColumnType.TIMESTAMP]
        self._json = by_type[ColumnType.JSON]
        self._bools = by_type[ColumnType.BOOLEAN]
        self._decimals = by_type[ColumnType.DECIMAL]

    def _drain(self) -> bytes:
        data = self._buffer.getvalue().encode("utf-8", "surrogateescape")
        self._buffer.seek(0)
        self._buffer.truncate()
        return data

    def begin(self) -> bytes:
        self._csv.writerow([c.name for c in self.columns])
        return self._drain()

    def write(self, rows: Sequence[Row]) -> bytes:
        self._csv.writerows(self._cells(rows))
        return self._drain()

    def _cells(self, rows: Iterable[Row]) -> Iterable[list[Any]]:
        text, times, json, bools, decimals = self._text, self._times, self._json, self._bools, self._decimals
        formula, number = _FORMULA_START, _NUMBER.fullmatch
        for row in rows:
            cells = list(row)
            for i in times:
                value = cells[i]
                if value is not None:
                    cells[i] = utc_text(value)
            for i in text:
                value = cells[i]
                if value and value[0] in formula and not number(value):
                    cells[i] = "'" + value
            for i in json:
                value = cells[i]
                if value is not None:
                    cells[i] = csv_cell(_json_text(value))
            for i in bools:
                value = cells[i]
                if value is not None:
                    cells[i] = "true" if value else "false"
            for i in decimals:
                value = cells[i]
                if value is not None:
                    cells[i] = str(value)
            yield cells


class JsonLinesWriter(Writer):
    """JSON lines: one JSON object per record, keyed by column name, one per line (UTF-8)."""

    media_type = "application/x-ndjson"
    extension = "jsonl"

    _OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS

    def write(self, rows: Sequence[Row]) -> bytes:
        names = [c.name for c in self.columns]
        dumps, options = orjson.dumps, self._OPTIONS
        return b"".join(
            dumps(dict(zip(names, row, strict=True)), default=_json_default, option=options) for row in rows
        )


_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.INTEGER: pa.int64(),
    ColumnType.TEXT: pa.string(),
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    ColumnType.DECIMAL: pa.decimal128(14, 4),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.JSON: pa.string(),
}


def arrow_schema(columns: Sequence[Column], metadata: dict[str, str] | None = None) -> pa.Schema:
    """The Parquet schema of `columns`: typed, every field nullable, with its description."""
    fields = [
        pa.field(
            c.name,
            _ARROW_TYPES[c.type],
            nullable=True,
            metadata={"description": c.description, "stekker.type": c.type.value},
        )
        for c in columns
    ]
    return pa.schema(fields, metadata=metadata or None)


class _Sink(io.RawIOBase):
    """A write-only file that hands what was written to whoever drains it."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts = []
        return data


class ParquetWriter(Writer):
    """Parquet with typed columns (snappy), written out row group by row group, footer last.

    Each batch becomes an Arrow record batch at once (columnar, a fraction of the memory of
    its Python rows); a row group is written when `ROW_GROUP_ROWS` rows have gathered. Not a
    row group per batch: the footer keeps every row group's metadata until the end, so 5,000-row
    groups made memory grow with the export (+45 MiB at 10 million rows, bench/export.py) and
    make readers slower; 100,000-row groups keep both small. Field metadata carry each
    column's description; file metadata say which kind it is and whether it is pseudonymised.
    """

    media_type = "application/vnd.apache.parquet"
    extension = "parquet"
    ROW_GROUP_ROWS = 100_000

    def __init__(self, columns: Sequence[Column], metadata: dict[str, str] | None = None) -> None:
        super().__init__(columns, metadata)
        self.schema = arrow_schema(self.columns, {f"stekker.{k}": v for k, v in self.metadata.items()})
        self._sink = _Sink()
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    def begin(self) -> bytes:
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression="snappy")
        return self._sink.drain()

    def write(self, rows: Sequence[Row]) -> bytes:
        assert self._writer is not None, "begin() first"
        if rows:
            self._pending.append(self._record_batch(rows))
            self._pending_rows += len(rows)
        if self._pending_rows >= self.ROW_GROUP_ROWS:
            self._flush()
        return self._sink.drain()

    def _record_batch(self, rows: Sequence[Row]) -> pa.RecordBatch:
        values = list(zip(*rows, strict=True))
        arrays = []
        for index, column in enumerate(self.columns):
            data: Sequence[Any] = values[index]
            if column.type is ColumnType.JSON:
                data = [None if v is None else _json_text(v) for v in data]
            arrays.append(pa.array(data, type=self.schema.field(index).type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _flush(self) -> None:
        assert self._writer is not None
        if self._pending_rows:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer.write_table(table, row_group_size=self._pending_rows)
        self._pending, self._pending_rows = [], 0

    def finish(self) -> bytes:
        if self._writer is None:
            self.begin()
        self._flush()
        assert self._writer is not None
        self._writer.close()
        return self._sink.drain()


WRITERS: dict[ExportFormat, type[Writer]] = {
    ExportFormat.CSV: CsvWriter,
    ExportFormat.JSONL: JsonLinesWriter,
    ExportFormat.PARQUET: ParquetWriter,
}
