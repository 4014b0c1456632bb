"""PostgreSQL binary COPY rows of an Arrow record batch in one pass: a numba kernel walks the rows
and writes every field straight from the Arrow buffers (maps as jsonb JSON, NUL stripped).

Row-major on purpose: the output is written front to back once, so it streams through the CPU
cache instead of being revisited column by column. The kernel reads the buffers through their
addresses (one kernel for every table shape, compiled once); the batch keeps them alive while it
runs. Imported lazily (numba takes a moment to load; only the PostgreSQL loader needs it).
"""

from __future__ import annotations

import collections

import numba
import numpy as np
import pyarrow as pa
from numba import types
from numba.extending import intrinsic

from voterpipe.warehouse import copy_binary

# kinds of column, and the fields of a column's row in the kernel's `meta` matrix
TEXT32, TEXT64, FIXED, ALL_NULL, MAP = range(5)
KIND, VALID, VALID_SHIFT, DATA, OFFSETS, SHIFT, WIDTH, ITEM_DATA, ITEM_OFFSETS, KEY_SHIFT, \
    ITEM_SHIFT, ITEM_VALID, ITEM_VALID_SHIFT, ENTRIES = range(14)
_JSONB_VERSION = 1


def _pointer(numba_type):
    @intrinsic
    def pointer(typingctx, address):
        signature = types.CPointer(numba_type)(types.int64)

        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

        return signature, codegen

    return pointer


_u8 = _pointer(types.uint8)
_i32 = _pointer(types.int32)
_i64 = _pointer(types.int64)
_u64 = _pointer(types.uint64)
_ONES, _HIGH_BITS = np.uint64(0x0101010101010101), np.uint64(0x8080808080808080)
_kernel = numba.njit(nogil=True, cache=True)
# helpers are inlined into the kernel: a call passing arrays would cost two atomic reference
# count updates per field
_inline = numba.njit(nogil=True, cache=True, inline="always")


@_inline
def _is_set(bitmap, index):
    return (_u8(bitmap)[index >> 3] >> (index & 7)) & 1


@_inline
def _put_length(out, at, length):
    out[at] = (length >> 24) & 0xFF
    out[at + 1] = (length >> 16) & 0xFF
    out[at + 2] = (length >> 8) & 0xFF
    out[at + 3] = length & 0xFF


@_inline
def _text_range(meta, c, row):
    """(start, end) of row's string in column c's data."""
    index = meta[c, SHIFT] + row
    if meta[c, KIND] == TEXT32:
        offsets = _i32(meta[c, OFFSETS])
        return np.int64(offsets[index]), np.int64(offsets[index + 1])
    offsets64 = _i64(meta[c, OFFSETS])
    return offsets64[index], offsets64[index + 1]


@_inline
def _put_text(out, at, data, start, end, nul, c):
    """Length word + the bytes without NUL (counted in nul[c]); return the position after."""
    slot = at
    at += 4
    source = _u8(data)
    i = start
    while i + 8 <= end:  # 8 bytes at a time while none of them is NUL
        word = _u64(data + i)[0]
        if (word - _ONES) & ~word & _HIGH_BITS:
            break
        _u64(out.ctypes.data + at)[0] = word
        at += 8
        i += 8
    while i < end:
        byte = source[i]
        if byte == 0:
            nul[c] += 1
        else:
            out[at] = byte
            at += 1
        i += 1
    _put_length(out, slot, at - slot - 4)
    return at


@_inline
def _put_json_string(out, at, data, start, end, nul, c):
    """data[start:end] as a quoted JSON string: backslash, quote, newline, carriage return and
    tab escaped, other control characters dropped, NUL dropped and counted in nul[c]."""
    source = _u8(data)
    out[at] = 0x22
    at += 1
    for i in range(start, end):
        byte = source[i]
        if byte == 0x5C or byte == 0x22:
            out[at] = 0x5C
            out[at + 1] = byte
            at += 2
        elif byte == 0x0A or byte == 0x0D or byte == 0x09:
            out[at] = 0x5C
            out[at + 1] = 0x6E if byte == 0x0A else (0x72 if byte == 0x0D else 0x74)
            at += 2
        elif byte >= 0x20:
            out[at] = byte
            at += 1
        elif byte == 0:
            nul[c] += 1
    out[at] = 0x22
    return at + 1


@_inline
def _put_map(out, at, meta, c, row, nul):
    """Length word + jsonb version + '{"k":"v",...}' (a null value as null)."""
    slot = at
    out[at + 4] = _JSONB_VERSION
    out[at + 5] = 0x7B
    at += 6
    entries = _i32(meta[c, ENTRIES])
    keys, items = _i32(meta[c, OFFSETS]), _i32(meta[c, ITEM_OFFSETS])
    key_shift, item_shift = meta[c, KEY_SHIFT], meta[c, ITEM_SHIFT]
    item_valid, item_valid_shift = meta[c, ITEM_VALID], meta[c, ITEM_VALID_SHIFT]
    first, last = entries[meta[c, SHIFT] + row], entries[meta[c, SHIFT] + row + 1]
    for entry in range(first, last):
        if entry > first:
            out[at] = 0x2C
            at += 1
        at = _put_json_string(out, at, meta[c, DATA], keys[key_shift + entry],
                              keys[key_shift + entry + 1], nul, c)
        out[at] = 0x3A
        at += 1
        if item_valid != 0 and not _is_set(item_valid, item_valid_shift + entry):
            out[at] = 0x6E
            out[at + 1] = 0x75
            out[at + 2] = 0x6C
            out[at + 3] = 0x6C
            at += 4
        else:
            at = _put_json_string(out, at, meta[c, ITEM_DATA], items[item_shift + entry],
                                  items[item_shift + entry + 1], nul, c)
    out[at] = 0x7D
    at += 1
    _put_length(out, slot, at - slot - 4)
    return at


@_kernel
def _encode_rows(out, meta, rows, nul):
    """Every row (field count, then each field) front to back into out; return bytes written."""
    columns = meta.shape[0]
    at = 0
    for row in range(rows):
        out[at] = (columns >> 8) & 0xFF
        out[at + 1] = columns & 0xFF
        at += 2
        for c in range(columns):
            kind = meta[c, KIND]
            valid = meta[c, VALID]
            if kind == ALL_NULL or (valid != 0 and not _is_set(valid, meta[c, VALID_SHIFT] + row)):
                _put_length(out, at, -1)
                at += 4
            elif kind == FIXED:
                width = meta[c, WIDTH]
                _put_length(out, at, width)
                at += 4
                source = _u8(meta[c, DATA])
                for i in range(width):
                    out[at + i] = source[row * width + i]
                at += width
            elif kind == MAP:
                at = _put_map(out, at, meta, c, row, nul)
            else:
                start, end = _text_range(meta, c, row)
                at = _put_text(out, at, meta[c, DATA], start, end, nul, c)
    return at


def _address(buffer) -> int:
    return buffer.address if buffer is not None else 0


def _offsets_span(column: pa.Array) -> int:
    """Bytes of string data a (sliced) string array spans."""
    offset_type = np.int64 if pa.types.is_large_string(column.type) else np.int32
    offsets = np.frombuffer(column.buffers()[1], offset_type, count=column.offset + len(column) + 1)
    return int(offsets[column.offset + len(column)] - offsets[column.offset])


def _describe_column(column: pa.Array, row: np.ndarray, keep: list) -> int:
    """Fill the column's meta row (keeping what it points into alive in `keep`); return an upper
    bound of the bytes its fields take after their length words."""
    rows = len(column)
    if column.null_count and not pa.types.is_null(column.type):
        row[VALID], row[VALID_SHIFT] = _address(column.buffers()[0]), column.offset
    if pa.types.is_null(column.type):
        row[KIND] = ALL_NULL
        return 0
    if copy_binary.is_text(column.type):
        _, offsets, data = column.buffers()
        row[KIND] = TEXT64 if pa.types.is_large_string(column.type) else TEXT32
        row[DATA], row[OFFSETS], row[SHIFT] = _address(data), _address(offsets), column.offset
        return _offsets_span(column)
    if pa.types.is_map(column.type):
        return _describe_map(column, row, keep)
    values = np.ascontiguousarray(copy_binary.fixed_bytes(column))
    keep.append(values)
    row[KIND], row[DATA], row[WIDTH] = FIXED, values.ctypes.data, values.shape[1]
    return rows * values.shape[1]


def _describe_map(column: pa.Array, row: np.ndarray, keep: list) -> int:
    wanted = pa.map_(pa.string(), pa.string())
    if column.type != wanted:
        column = column.cast(wanted)
        keep.append(column)
    rows = len(column)
    entries = np.frombuffer(column.buffers()[1], np.int32, count=column.offset + rows + 1)
    pairs = column.values
    keys, items = pairs.field(0), pairs.field(1)
    keep.extend([pairs, keys, items])
    first, last = int(entries[column.offset]), int(entries[column.offset + rows])
    row[KIND], row[ENTRIES], row[SHIFT] = MAP, _address(column.buffers()[1]), column.offset
    row[DATA], row[OFFSETS], row[KEY_SHIFT] = _address(keys.buffers()[2]), _address(keys.buffers()[1]), keys.offset
    row[ITEM_DATA], row[ITEM_OFFSETS], row[ITEM_SHIFT] = (_address(items.buffers()[2]),
                                                          _address(items.buffers()[1]), items.offset)
    if items.null_count:
        row[ITEM_VALID], row[ITEM_VALID_SHIFT] = _address(items.buffers()[0]), items.offset
    text = _offsets_span(keys.slice(first, last - first)) + _offsets_span(items.slice(first, last - first))
    # escaping at most doubles a byte; per entry quotes, colon, comma or "null"
    return rows * 3 + (last - first) * 8 + 2 * text


def encode_batch(batch: pa.RecordBatch, nul_stripped: collections.Counter) -> memoryview:
    """The binary COPY rows of a batch (no file header/trailer); NUL characters are left out of
    text and JSON and counted per column in nul_stripped."""
    rows, columns = batch.num_rows, batch.num_columns
    meta = np.zeros((columns, 14), np.int64)
    keep: list = []
    bound = rows * (2 + 4 * columns)
    for c, column in enumerate(batch.columns):
        bound += _describe_column(column, meta[c], keep)
    out = np.empty(bound, np.uint8)
    nul = np.zeros(columns, np.int64)
    written = _encode_rows(out, meta, rows, nul)
    del keep  # the kernel has finished reading the buffers
    for c in np.flatnonzero(nul):
        nul_stripped[batch.schema.names[c]] += int(nul[c])
    return memoryview(out)[:written]


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel on a tiny batch."""
    sample = pa.RecordBatch.from_arrays(
        [pa.array(["a", None]), pa.array([1, None], pa.int32()),
         pa.array([[("k", "v")], None], pa.map_(pa.string(), pa.string())), pa.nulls(2)],
        names=["t", "i", "m", "n"])
    encode_batch(sample, collections.Counter())
