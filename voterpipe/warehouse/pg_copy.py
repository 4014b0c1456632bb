"""COPY into PostgreSQL from Arrow record batches: the column types, the rendered rows and the
stream psycopg2 reads them from, and error messages that never quote a loaded value.

- rows travel in PostgreSQL's binary COPY format (copy_binary.py; the server parses it much
  faster than CSV), or as CSV for a table with a column type the binary renderer lacks.
- PostgreSQL text cannot hold NUL (0x00). Rendering strips NUL characters and counts them per
  column (the caller logs the counts, never the values, and records the table's total). Every
  other character (quotes, tabs, backslashes, newlines, carriage returns) arrives intact.
- a rejected row is reported by table, data line and column, never by its value
  (describe_pg_error()).
"""

from __future__ import annotations

import collections
import queue
import re
import threading

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import psycopg2
from psycopg2 import sql

from voterpipe.warehouse import copy_binary
from voterpipe.warehouse.tables import WarehouseInputError

BATCH_ROWS = 65_536
COPY_READ_SIZE = 1 << 20
# rows rendered at a time: ~10 MB of voter rows, small enough that the allocator reuses the
# memory of chunks already sent (a fresh 80 MB chunk per batch cost a page fault per 4 KB)
RENDER_ROWS = 8_192

_PG_TYPES = {
    pa.string(): "text", pa.large_string(): "text", pa.string_view(): "text",
    pa.date32(): "date", pa.int8(): "smallint", pa.int16(): "smallint", pa.int32(): "integer",
    pa.int64(): "bigint", pa.uint8(): "smallint", pa.uint16(): "integer", pa.uint32(): "bigint",
    pa.float32(): "real", pa.float64(): "double precision", pa.bool_(): "boolean",
    pa.null(): "text",
}

_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed")


class _Stopped(Exception):
    """The stream was closed while a pipeline thread waited."""


class WarehouseLoadError(RuntimeError):
    """PostgreSQL refused the data; the message names table, line and column, not the value."""


def arrow_to_pg_type(field: pa.Field) -> str:
    arrow_type = field.type
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp without time zone"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_map(arrow_type):
        return "jsonb"  # voters' extra map (maps_as_json)
    try:
        return _PG_TYPES[arrow_type]
    except KeyError:
        raise WarehouseInputError(f"column {field.name!r} has type {arrow_type}, "
                                  "which the PostgreSQL warehouse cannot store") from None


def maps_as_json(batch: pa.RecordBatch, prefix: str = "") -> pa.RecordBatch:
    """Map columns as JSON object text (`prefix` + '{"k":"v",...}'; null stays null), rendered by
    copy_binary.map_json. Binary COPY into jsonb wants prefix "\\x01" (its version)."""
    if not any(pa.types.is_map(f.type) for f in batch.schema):
        return batch
    columns = []
    for column in batch.columns:
        if pa.types.is_map(column.type):
            wanted = pa.map_(pa.string(), pa.string())
            column = column.cast(wanted) if column.type != wanted else column
            column = copy_binary.map_json(column, prefix.encode())
        columns.append(column)
    names = batch.schema.names
    return pa.RecordBatch.from_arrays(columns, names=names)


def render_csv(batch: pa.RecordBatch, nul_stripped: collections.Counter) -> bytes:
    """CSV rows of a batch, NUL characters removed and counted per column.

    pyarrow quotes every string and writes null as an empty unquoted field, which is exactly
    PostgreSQL's CSV convention for NULL versus the empty string."""
    batch = maps_as_json(batch)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(batch, sink, _CSV_OPTIONS)
    payload = sink.getvalue().to_pybytes()
    if b"\x00" in payload:
        # NUL only ever comes from string data (numbers and dates never render one)
        for name, column in zip(batch.schema.names, batch.columns):
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                found = pc.sum(pc.count_substring(column, "\x00")).as_py()
                if found:
                    nul_stripped[name] += found
        payload = payload.replace(b"\x00", b"")
    return payload


def render_binary(batch: pa.RecordBatch, nul_stripped: collections.Counter) -> memoryview:
    """Binary COPY rows of a batch, NUL characters removed and counted per column."""
    from voterpipe.warehouse import pg_rows  # numba: loaded by the first binary COPY only

    return pg_rows.encode_batch(batch, nul_stripped)


class CopyStream:
    """A file-like object psycopg2.copy_expert reads: COPY rows rendered from Arrow record
    batches, in a pipeline of threads: one pulls the batches (Parquet decoding), one renders
    them, and psycopg2 sends the previous chunk meanwhile (all three release the GIL).

    binary=True renders PostgreSQL's binary COPY format, otherwise CSV. Setting `abort` makes
    the next read raise, which ends the COPY with an error (a sibling load failed)."""

    def __init__(self, batches, columns: list[str], binary: bool = False, queue_depth: int = 3,
                 abort: threading.Event | None = None):
        self.columns = columns
        self.rows = 0
        self.nul_stripped: collections.Counter = collections.Counter()
        self._render = render_binary if binary else render_csv
        self._abort = abort
        self._batches: queue.Queue = queue.Queue(maxsize=2)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_depth)
        self._stop = threading.Event()
        self._chunk = copy_binary.HEADER if binary else b""
        self._trailer = copy_binary.TRAILER if binary else b""
        self._pos = 0
        self._finished = False
        self._threads = [threading.Thread(target=self._read_ahead, args=(batches,), daemon=True,
                                          name="copy-reader"),
                         threading.Thread(target=self._produce, daemon=True, name="copy-producer")]
        for thread in self._threads:
            thread.start()

    def _read_ahead(self, batches) -> None:
        try:
            for batch in batches:
                if batch.num_rows and not self._put(self._batches, batch):
                    return
            self._put(self._batches, None)
        except BaseException as exc:  # handed on to the producer, then to the reading thread
            self._put(self._batches, exc)

    def _produce(self) -> None:
        try:
            while (batch := self._get(self._batches)) is not None:
                if isinstance(batch, BaseException):
                    raise batch
                for start in range(0, batch.num_rows, RENDER_ROWS):
                    piece = batch.slice(start, RENDER_ROWS)
                    if not self._put(self._queue, (self._render(piece, self.nul_stripped), piece.num_rows)):
                        return
            self._put(self._queue, (self._trailer, 0))
            self._put(self._queue, None)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(self._queue, exc)

    def _put(self, target: queue.Queue, item) -> bool:
        while not self._stop.is_set():
            try:
                target.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, source: queue.Queue):
        while not self._stop.is_set():
            try:
                return source.get(timeout=0.1)
            except queue.Empty:
                continue
        raise _Stopped

    def read(self, size: int = -1) -> bytes:
        if self._abort is not None and self._abort.is_set():
            raise WarehouseLoadError("cancelled because a parallel load of the same table failed")
        while self._pos >= len(self._chunk):
            if self._finished:
                return b""
            item = self._queue.get()
            if item is None:
                self._finished = True
                return b""
            if isinstance(item, BaseException):
                self._finished = True
                raise item
            self._chunk, rows = item
            self._pos = 0
            self.rows += rows
        end = len(self._chunk) if size is None or size < 0 else self._pos + size
        piece = bytes(self._chunk[self._pos:end])
        self._pos += len(piece)
        return piece

    def readline(self, size: int = -1) -> bytes:  # part of the file protocol; COPY uses read()
        return self.read(size)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def copy_batches(cur, schema: str, table: str, batches, columns: list[str], binary: bool,
                 abort: threading.Event | None = None) -> tuple[int, collections.Counter]:
    """COPY the batches into schema.table, created in this transaction; (rows, NULs stripped)."""
    stream = CopyStream(batches, columns, binary=binary, abort=abort)
    try:
        cur.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT {}, FREEZE true)").format(
            sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL("binary" if binary else "csv")).as_string(cur),
            stream, size=COPY_READ_SIZE)
        copied = cur.rowcount
    finally:
        stream.close()
    if copied != stream.rows:
        raise WarehouseLoadError(f"{table}: COPY reported {copied} rows, {stream.rows} were sent")
    return copied, stream.nul_stripped


def describe_pg_error(exc: psycopg2.Error) -> str:
    """The server's primary message plus where in the COPY data it happened, without the value
    (PostgreSQL's CONTEXT line quotes the offending field, which may be a name or address)."""
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag is not None else None) or str(exc).strip().splitlines()[0]
    where = ""
    context = diag.context if diag is not None else None
    if context:
        found = re.search(r"COPY (\S+), line (\d+)(?:, column (\S+?):)?", context)
        if found:
            where = f" (table {found.group(1)}, data line {found.group(2)}" + (
                f", column {found.group(3)})" if found.group(3) else ")")
    # the primary message can also quote a value ("invalid input syntax for type date: "...")
    primary = re.sub(r':\s*".*"$', ": <value withheld>", primary, flags=re.S)
    return f"{type(exc).__name__}: {primary}{where}"
