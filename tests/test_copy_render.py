"""Rendering rows for PostgreSQL's COPY: map columns as JSON text (CSV) and the one-pass binary
row encoder, checked against independent decodings (no server needed)."""

from __future__ import annotations

import collections
import json
import struct
from datetime import date, timedelta

import pyarrow as pa
import pytest

from voterpipe.warehouse import pg_rows
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


def test_binary_rows_decode_to_the_batch_values_with_nul_stripped_and_counted():
    rows = 5_000
    maps = [None if i % 9 == 0 else [("k\x00", f"v{i}\n\x00"), ("n", None)][: i % 3] for i in range(rows)]
    batch = pa.RecordBatch.from_arrays([
        pa.array([None if i % 7 == 0 else ("a\x00b" if i % 13 == 0 else "é" * (i % 11)) for i in range(rows)]),
        pa.array([None if i % 5 == 0 else i - 2_500 for i in range(rows)], pa.int32()),
        pa.nulls(rows),
        pa.array([None if i % 3 == 0 else i % 2 == 0 for i in range(rows)]),
        pa.array(maps, pa.map_(pa.string(), pa.string())),
        pa.array([date(2000, 1, 1) + timedelta(days=i) for i in range(rows)], pa.date32()),
    ], names=["text", "number", "nothing", "flag", "extra", "day"]).slice(13, 4_000)
    stripped = collections.Counter()
    decoded = _decode(bytes(pg_rows.encode_batch(batch, stripped)), 6)
    text, number, _, flag, _, day = (batch.column(i).to_pylist() for i in range(6))
    extra = maps[13:4_013]
    assert len(decoded) == batch.num_rows
    for row, got in enumerate(decoded):
        assert got[0] == (None if text[row] is None else text[row].replace("\x00", "").encode())
        assert got[1] == (None if number[row] is None else struct.pack(">i", number[row]))
        assert got[2] is None
        assert got[3] == (None if flag[row] is None else bytes([flag[row]]))
        if extra[row] is None:
            assert got[4] is None
        else:  # jsonb: a version byte, then the object
            assert got[4][:1] == b"\x01"
            assert json.loads(got[4][1:]) == {k.replace("\x00", ""): None if v is None else v.replace("\x00", "")
                                              for k, v in extra[row]}
        assert struct.unpack(">i", got[5])[0] == (day[row] - date(2000, 1, 1)).days
    assert stripped == {"text": sum(t.count("\x00") for t in text if t),
                        "extra": sum(k.count("\x00") + (v or "").count("\x00") for m in extra if m for k, v in m)}
