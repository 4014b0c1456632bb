"""Rendering rows for PostgreSQL's binary COPY: map columns as JSON text and the block-wise
encoder, checked against independent decodings (no server needed)."""

from __future__ import annotations

import json
import struct

import pyarrow as pa
import pytest

from voterpipe.warehouse import copy_binary
from voterpipe.warehouse.pg_copy import maps_as_json

MAPS = [
    [("note", 'say "hi"\\ok\nnext\r\tend'), ("ward", "WARD 3")],
    None,
    [],
    [("empty", ""), ("missing", None)],
    [("bell\x07key", "ctl\x01\x1fvalue"), ("名前", "Zoë 😀")],
]


def _expected(entries):
    """The JSON object the map should become (other control characters are dropped)."""
    if entries is None:
        return None
    strip = lambda text: "".join(ch for ch in text if ch in "\n\r\t" or ord(ch) >= 0x20)  # noqa: E731
    return {strip(k): None if v is None else strip(v) for k, v in entries}


@pytest.mark.parametrize("sliced", [False, True])
def test_maps_become_json_objects_and_nulls_stay_null(sliced):
    column = pa.array(MAPS * 3, pa.map_(pa.string(), pa.string()))
    expected = [_expected(m) for m in MAPS * 3]
    if sliced:
        column, expected = column.slice(4, 8), expected[4:12]
    batch = pa.RecordBatch.from_arrays([column], names=["extra"])
    for prefix in ("", "\x01"):
        texts = maps_as_json(batch, prefix).column(0).to_pylist()
        assert [t is None for t in texts] == [e is None for e in expected]
        assert all(t.startswith(prefix + "{") for t in texts if t is not None)
        assert [json.loads(t[len(prefix):]) if t is not None else None for t in texts] == expected


def _decode(payload: bytes, columns: int) -> list[list]:
    """Rows of a binary COPY body (no header) as lists of raw field bytes (None for NULL)."""
    rows, at = [], 0
    while at < len(payload):
        count, = struct.unpack_from(">h", payload, at)
        assert count == columns
        at += 2
        row = []
        for _ in range(count):
            length, = struct.unpack_from(">i", payload, at)
            at += 4
            row.append(None if length == -1 else payload[at:at + length])
            at += max(length, 0)
        rows.append(row)
    return rows


def test_block_wise_encoding_writes_every_row_across_block_edges(monkeypatch):
    rows = 5_000
    batch = pa.RecordBatch.from_arrays([
        pa.array([None if i % 7 == 0 else "v" * (i % 11) for i in range(rows)]),
        pa.array([None if i % 5 == 0 else i - 2_500 for i in range(rows)], pa.int32()),
        pa.nulls(rows),
        pa.array([None if i % 3 == 0 else i % 2 == 0 for i in range(rows)]),
    ], names=["text", "number", "nothing", "flag"]).slice(13, 4_000)
    monkeypatch.setattr(copy_binary, "ENCODE_BLOCK_ROWS", 64)
    decoded = _decode(bytes(copy_binary.encode_batch(batch)), 4)
    text, number, _, flag = (batch.column(i).to_pylist() for i in range(4))
    assert len(decoded) == batch.num_rows
    for row, got in enumerate(decoded):
        assert got[0] == (None if text[row] is None else text[row].encode())
        assert got[1] == (None if number[row] is None else struct.pack(">i", number[row]))
        assert got[2] is None
        assert got[3] == (None if flag[row] is None else bytes([flag[row]]))
