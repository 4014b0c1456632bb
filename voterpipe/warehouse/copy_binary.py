"""PostgreSQL binary COPY rows rendered from Arrow record batches (numba kernels copy each field
into place), so the server parses fixed-size fields instead of CSV text.

Format (PostgreSQL docs, "COPY ... Binary Format"): a signature header; per row an int16 field
count, then per field an int32 byte length (-1 for NULL) and the value in network byte order:
text as its UTF-8 bytes, date as int32 days since 2000-01-01, smallint/integer/bigint as
int16/32/64, real/double as IEEE float4/8, boolean as one byte; then an int16 -1 trailer.
"""

from __future__ import annotations

import collections
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957
ENCODE_BLOCK_ROWS = 2_048

# Arrow integer/float type -> the big-endian numpy type of the PostgreSQL column it is stored in
# (must agree with pg_copy._PG_TYPES: int8 -> smallint, uint32 -> bigint, ...)
_FIXED = {
    pa.int8(): ">i2", pa.uint8(): ">i2", pa.int16(): ">i2", pa.uint16(): ">i4", pa.int32(): ">i4",
    pa.uint32(): ">i8", pa.int64(): ">i8", pa.float32(): ">f4", pa.float64(): ">f8",
}


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def supports(arrow_schema: pa.Schema) -> bool:
    """Whether every column has a binary rendering here (others go as CSV)."""
    return all(_is_text(f.type) or f.type in _FIXED or pa.types.is_date32(f.type) or pa.types.is_map(f.type)
               or pa.types.is_boolean(f.type) or pa.types.is_null(f.type) for f in arrow_schema)  # maps: jsonb text


def _put_text(out, cursor, data, offsets, valid):
    """Length word + bytes of each row's string at cursor[row]; advances the cursors."""
    has_nulls = valid.size > 0
    for row in range(cursor.size):
        at = cursor[row]
        if has_nulls and not valid[row]:
            out[at] = 0xFF
            out[at + 1] = 0xFF
            out[at + 2] = 0xFF
            out[at + 3] = 0xFF
            cursor[row] = at + 4
            continue
        start = offsets[row]
        length = offsets[row + 1] - start
        out[at] = (length >> 24) & 0xFF
        out[at + 1] = (length >> 16) & 0xFF
        out[at + 2] = (length >> 8) & 0xFF
        out[at + 3] = length & 0xFF
        at += 4
        for i in range(length):
            out[at + i] = data[start + i]
        cursor[row] = at + length


def _put_fixed(out, cursor, values, valid):
    """Length word + the big-endian bytes (values is rows x width uint8) at cursor[row]."""
    has_nulls = valid.size > 0
    width = values.shape[1]
    for row in range(cursor.size):
        at = cursor[row]
        if has_nulls and not valid[row]:
            out[at] = 0xFF
            out[at + 1] = 0xFF
            out[at + 2] = 0xFF
            out[at + 3] = 0xFF
            cursor[row] = at + 4
            continue
        out[at] = 0
        out[at + 1] = 0
        out[at + 2] = 0
        out[at + 3] = width
        at += 4
        for i in range(width):
            out[at + i] = values[row, i]
        cursor[row] = at + width


def _json_escaped_length(data, start, end):
    """Bytes of data[start:end] as JSON string content (see _put_json_string)."""
    size = 0
    for i in range(start, end):
        byte = data[i]
        if byte == 0x5C or byte == 0x22 or byte == 0x0A or byte == 0x0D or byte == 0x09:
            size += 2
        elif byte == 0 or byte >= 0x20:
            size += 1
    return size


def _put_json_string(out, at, data, start, end):
    """Write data[start:end] quoted as a JSON string at out[at]; return the position after it.
    Backslash, quote, newline, carriage return and tab are escaped; other control characters
    dropped (JSON text cannot hold them raw); NUL kept for strip_nul to count and remove."""
    out[at] = 0x22
    at += 1
    for i in range(start, end):
        byte = data[i]
        if byte == 0x5C or byte == 0x22:
            out[at] = 0x5C
            out[at + 1] = byte
            at += 2
        elif byte == 0x0A or byte == 0x0D or byte == 0x09:
            out[at] = 0x5C
            out[at + 1] = 0x6E if byte == 0x0A else (0x72 if byte == 0x0D else 0x74)
            at += 2
        elif byte == 0 or byte >= 0x20:
            out[at] = byte
            at += 1
    out[at] = 0x22
    return at + 1


def _map_json_sizes(valid, entries, key_data, key_offsets, item_data, item_offsets, item_valid, sizes):
    """sizes[row] = bytes of row's '{"k":"v",...}' (prefix excluded; 0 for a null map)."""
    has_nulls = item_valid.size > 0
    for row in range(sizes.size):
        if valid.size > 0 and not valid[row]:
            sizes[row] = 0
            continue
        size = 2
        for entry in range(entries[row], entries[row + 1]):
            if entry > entries[row]:
                size += 1
            size += 3 + _json_escaped_length(key_data, key_offsets[entry], key_offsets[entry + 1])
            if has_nulls and not item_valid[entry]:
                size += 4
            else:
                size += 2 + _json_escaped_length(item_data, item_offsets[entry], item_offsets[entry + 1])
        sizes[row] = size


def _put_map_json(out, starts, prefix, valid, entries, key_data, key_offsets, item_data, item_offsets,
                  item_valid):
    """Each row's prefix + JSON object at out[starts[row]] (nothing for a null map)."""
    has_nulls = item_valid.size > 0
    for row in range(starts.size - 1):
        if valid.size > 0 and not valid[row]:
            continue
        at = starts[row]
        for i in range(prefix.size):
            out[at + i] = prefix[i]
        at += prefix.size
        out[at] = 0x7B
        at += 1
        for entry in range(entries[row], entries[row + 1]):
            if entry > entries[row]:
                out[at] = 0x2C
                at += 1
            at = _put_json_string(out, at, key_data, key_offsets[entry], key_offsets[entry + 1])
            out[at] = 0x3A
            at += 1
            if has_nulls and not item_valid[entry]:
                out[at] = 0x6E
                out[at + 1] = 0x75
                out[at + 2] = 0x6C
                out[at + 3] = 0x6C
                at += 4
            else:
                at = _put_json_string(out, at, item_data, item_offsets[entry], item_offsets[entry + 1])
        out[at] = 0x7D


_kernels_lock = threading.Lock()


def _kernels():
    """The field-copy loops compiled by numba (imported here: it takes a moment to load, and
    only the PostgreSQL loader needs it). nogil: encoding overlaps the COPY being sent."""
    with _kernels_lock:  # parallel loads share one compiled pair
        if not _compiled:
            import numba

            compile_ = numba.njit(nogil=True, cache=True)
            length, put_string = compile_(_json_escaped_length), compile_(_put_json_string)
            # the map kernels call the two helpers above as compiled functions
            sizes = numba.njit(nogil=True, cache=True)(_with_globals(_map_json_sizes, _json_escaped_length=length))
            put_map = numba.njit(nogil=True, cache=True)(_with_globals(_put_map_json, _put_json_string=put_string))
            _compiled.extend([compile_(_put_text), compile_(_put_fixed), sizes, put_map])
        return _compiled


def _with_globals(function, **names):
    import types

    return types.FunctionType(function.__code__, {**function.__globals__, **names}, function.__name__)


_compiled: list = []


def warm_up() -> threading.Thread:
    """Load (or compile) the kernels in a background thread, so a publish can overlap the
    half second numba takes with its schema work; encode_batch waits for it if needed."""
    thread = threading.Thread(target=_kernels, name="copy-binary-warm-up", daemon=True)
    thread.start()
    return thread


_NO_NULLS = np.zeros(0, np.bool_)


def _validity(column: pa.Array) -> np.ndarray:
    if column.null_count == 0:
        return _NO_NULLS
    return np.asarray(column.is_valid())


def _text_buffers(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(data bytes, row offsets into them) of a string array, without copying."""
    rows = len(column)
    _, offsets_buffer, data_buffer = column.buffers()
    offset_type = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, offset_type, count=column.offset + rows + 1)[column.offset:]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    return data, offsets


def _fixed_bytes(column: pa.Array) -> np.ndarray:
    """rows x width uint8: each value in its PostgreSQL column's network byte order."""
    arrow_type = column.type
    if pa.types.is_date32(arrow_type):
        values = column.cast(pa.int32()).fill_null(0).to_numpy() - _PG_EPOCH_DAYS
        big_endian = values.astype(">i4")
    elif pa.types.is_boolean(arrow_type):
        big_endian = column.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
    else:
        big_endian = column.fill_null(0).to_numpy().astype(_FIXED[arrow_type])
    return big_endian.view(np.uint8).reshape(len(column), big_endian.dtype.itemsize)


def strip_nul(batch: pa.RecordBatch, stripped: collections.Counter) -> pa.RecordBatch:
    """The batch without NUL characters in its strings (PostgreSQL text cannot hold them),
    counting what was removed per column in `stripped`."""
    columns = list(batch.columns)
    changed = False
    for index, (name, column) in enumerate(zip(batch.schema.names, columns)):
        if not _is_text(column.type) or len(column) == 0:
            continue
        data, offsets = _text_buffers(column)
        found = int(np.count_nonzero(data[offsets[0]:offsets[-1]] == 0))
        if found:
            stripped[name] += found
            columns[index] = pc.replace_substring(column, "\x00", "")
            changed = True
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch


def encode_batch(batch: pa.RecordBatch) -> memoryview:
    """The binary COPY rows of a batch (no file header/trailer); strings must hold no NUL."""
    rows = batch.num_rows
    sizes = np.full(rows, 2 + 4 * batch.num_columns, np.int64)
    prepared = []
    for column in batch.columns:
        valid = _validity(column)
        if pa.types.is_null(column.type):
            prepared.append(("null", None, None))
            continue
        if _is_text(column.type):
            data, offsets = _text_buffers(column)
            lengths = np.diff(offsets)
            sizes += lengths if valid.size == 0 else np.where(valid, lengths, 0)
            prepared.append(("text", (data, offsets), valid))
        else:
            values = _fixed_bytes(column)
            sizes += values.shape[1] if valid.size == 0 else np.where(valid, values.shape[1], 0)
            prepared.append(("fixed", values, valid))
    starts = np.zeros(rows + 1, np.int64)
    np.cumsum(sizes, out=starts[1:])
    out = np.empty(int(starts[-1]), np.uint8)
    count = np.frombuffer(np.array([batch.num_columns], ">i2").tobytes(), np.uint8)
    if rows:
        out[starts[:-1]] = count[0]
        out[starts[:-1] + 1] = count[1]
    cursor = starts[:-1] + 2
    put_text, put_fixed = _kernels()[:2]
    all_null = np.zeros(rows, np.bool_)  # valid mask for a column of Arrow type null
    no_bytes = np.zeros((rows, 0), np.uint8)
    # every column is written for a block of rows before the next block: the block's output
    # stays in the CPU cache (column by column over the whole batch it would not)
    for low in range(0, rows, ENCODE_BLOCK_ROWS):
        high = min(low + ENCODE_BLOCK_ROWS, rows)
        block = cursor[low:high]
        for kind, values, valid in prepared:
            valid = valid[low:high] if valid is not None and valid.size else valid
            if kind == "text":
                put_text(out, block, values[0], values[1][low:high + 1], valid)
            elif kind == "fixed":
                put_fixed(out, block, values[low:high], valid)
            else:
                put_fixed(out, block, no_bytes[low:high], all_null[low:high])
    return memoryview(out)


def map_json(column: pa.Array, prefix: bytes = b"") -> pa.Array:
    """A map<string, string> column as `prefix` + JSON object text per row ('{"k":"v",...}',
    a null value as null, a null map as null), built by numba kernels in two passes."""
    rows = len(column)
    valid = _validity(column)
    entries = np.frombuffer(column.buffers()[1], np.int32, count=column.offset + rows + 1)[column.offset:]
    pairs = column.values  # the struct of every entry; `entries` index it
    keys, items = pairs.field(0), pairs.field(1)
    key_data, key_offsets = _text_buffers(keys)
    item_data, item_offsets = _text_buffers(items)
    item_valid = _validity(items)
    _, _, sizes_kernel, put_kernel = _kernels()
    sizes = np.empty(rows, np.int64)
    sizes_kernel(valid, entries, key_data, key_offsets, item_data, item_offsets, item_valid, sizes)
    if valid.size:
        sizes += np.where(valid, len(prefix), 0)
    else:
        sizes += len(prefix)
    starts = np.zeros(rows + 1, np.int64)
    np.cumsum(sizes, out=starts[1:])
    out = np.empty(int(starts[-1]), np.uint8)
    put_kernel(out, starts, np.frombuffer(prefix, np.uint8), valid, entries, key_data, key_offsets,
               item_data, item_offsets, item_valid)
    nulls = pa.py_buffer(np.packbits(valid, bitorder="little")) if valid.size else None
    return pa.LargeStringArray.from_buffers(rows, pa.py_buffer(starts), pa.py_buffer(out), nulls)
