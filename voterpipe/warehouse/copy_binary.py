"""PostgreSQL's binary COPY format: which Arrow columns it can carry, fixed-size values in network
byte order, and map columns as JSON text (for the CSV path; pg_rows.py encodes the binary rows).

Format (PostgreSQL docs, "COPY ... Binary Format"): a signature header; per row an int16 field
count, then per field an int32 byte length (-1 for NULL) and the value in network byte order:
text as its UTF-8 bytes, date as int32 days since 2000-01-01, smallint/integer/bigint as
int16/32/64, real/double as IEEE float4/8, boolean as one byte; then an int16 -1 trailer.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_PG_EPOCH_DAYS = 10_957

# Arrow integer/float type -> the big-endian numpy type of the PostgreSQL column it is stored in
# (must agree with pg_copy._PG_TYPES: int8 -> smallint, uint32 -> bigint, ...)
_FIXED = {
    pa.int8(): ">i2", pa.uint8(): ">i2", pa.int16(): ">i2", pa.uint16(): ">i4", pa.int32(): ">i4",
    pa.uint32(): ">i8", pa.int64(): ">i8", pa.float32(): ">f4", pa.float64(): ">f8",
}


def is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def supports(arrow_schema: pa.Schema) -> bool:
    """Whether every column has a binary rendering here (others go as CSV)."""
    return all(is_text(f.type) or f.type in _FIXED or pa.types.is_date32(f.type) or pa.types.is_map(f.type)
               or pa.types.is_boolean(f.type) or pa.types.is_null(f.type) for f in arrow_schema)  # maps: jsonb text


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
    """The map-to-JSON loops compiled by numba (imported here: it takes a moment to load, and
    only the PostgreSQL loader needs it)."""
    with _kernels_lock:  # parallel loads share one compiled pair
        if not _compiled:
            import numba

            compile_ = numba.njit(nogil=True, cache=True)
            length, put_string = compile_(_json_escaped_length), compile_(_put_json_string)
            # the map kernels call the two helpers above as compiled functions
            sizes = numba.njit(nogil=True, cache=True)(_with_globals(_map_json_sizes, _json_escaped_length=length))
            put_map = numba.njit(nogil=True, cache=True)(_with_globals(_put_map_json, _put_json_string=put_string))
            _compiled.extend([sizes, put_map])
        return _compiled


def _with_globals(function, **names):
    import types

    return types.FunctionType(function.__code__, {**function.__globals__, **names}, function.__name__)


_compiled: list = []


def _warm_up_rows() -> None:
    from voterpipe.warehouse import pg_rows

    pg_rows.warm_up()


def warm_up() -> threading.Thread:
    """Load (or compile) the row encoder in a background thread, so a publish can overlap the
    half second numba takes with its schema work (pg_rows is imported on first use anyway)."""
    thread = threading.Thread(target=_warm_up_rows, name="copy-binary-warm-up", daemon=True)
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


def fixed_bytes(column: pa.Array) -> np.ndarray:
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
    sizes_kernel, put_kernel = _kernels()
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
