"""Cutting the fields of fixed-width lines out of a block: most lines as rows of a byte matrix copied
straight from the block, the few others (multi-byte characters, NULs, short lines) by code point."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SCAN_BYTES = 1 << 20
# Wanted fields closer than this are cut from one copy of the bytes between them (a wider copy
# costs less than a second gather); farther apart, each group is gathered on its own.
_SPAN_GAP = 64


def cut_fields(block: bytes, starts: np.ndarray, ends: np.ndarray, kept: np.ndarray, wide_index: np.ndarray,
               with_lf: pa.StringArray, wanted: list[tuple[str, int, int]]) -> dict[str, pa.Array]:
    """Each wanted field (name, first character, end character) of the `kept` lines, in their order.

    A plain line (ASCII, no NUL, long enough for every wanted field) holds each field as the bytes
    at the field's positions: those are copied as fixed-size rows, no per-value work. The other
    lines are cut by code point from `with_lf` (each line with its LF): a field past a short line's
    end stops there, and NULs are dropped.
    """
    if not wanted:
        return {}
    reach = max(end for _, _, end in wanted)
    odd = np.zeros(len(ends), dtype=bool)
    odd[wide_index] = True
    nul = np.zeros(len(ends), dtype=bool)
    if b"\x00" in block:
        nul[_nul_lines(block, ends)] = True
    odd |= nul
    odd |= (ends - starts) < reach
    odd_kept = odd[kept]
    plain, others = kept[~odd_kept], kept[odd_kept]
    odd_lines = with_lf.take(pa.array(others)) if len(others) else None
    # Characters of the odd lines (the shortest one), and whether any holds a NUL: what to clean.
    shortest = int(pc.min(pc.utf8_length(odd_lines)).as_py()) - 1 if odd_lines is not None else 0
    any_nul = bool(nul[others].any())
    order = None
    if len(others):  # kept lines in order, as indices into the plain values followed by the others
        positions = np.empty(len(kept), dtype=np.int64)
        positions[~odd_kept] = np.arange(len(plain))
        positions[odd_kept] = len(plain) + np.arange(len(others))
        order = pa.array(positions)
    data = np.frombuffer(block, dtype=np.uint8)
    plain_starts = starts[plain]
    columns = {}
    for span_start, span_end, fields in _spans(wanted):
        rows = _byte_rows(data, plain_starts + span_start, span_end - span_start)
        for name, start, end in fields:
            values = _fixed_size_strings(rows[:, start - span_start: end - span_start])
            if odd_lines is not None:
                cut = pc.utf8_slice_codeunits(odd_lines, start, end)
                cut = pc.utf8_rtrim(cut, characters="\n") if end > shortest else cut  # reached the LF
                cut = pc.replace_substring(cut, "\x00", "") if any_nul else cut
                values = pa.concat_arrays([values, cut]).take(order)
            columns[name] = values
    return {name: columns[name] for name, _, _ in wanted}


def _spans(wanted: list[tuple[str, int, int]]) -> list[tuple[int, int, list]]:
    """The wanted fields grouped into spans of nearby positions: (start, end, fields)."""
    spans: list[tuple[int, int, list]] = []
    for field in sorted(wanted, key=lambda f: f[1]):
        _, start, end = field
        if spans and start - spans[-1][1] <= _SPAN_GAP:
            first, last, fields = spans[-1]
            spans[-1] = (first, max(last, end), fields + [field])
        else:
            spans.append((start, end, [field]))
    return spans


def _byte_rows(data: np.ndarray, row_starts: np.ndarray, width: int) -> np.ndarray:
    """A (rows x width) copy of the bytes at each start (each start + width within the data)."""
    if width <= 0 or not len(row_starts):
        return np.zeros((len(row_starts), max(width, 0)), dtype=np.uint8)
    windows = np.lib.stride_tricks.as_strided(data, shape=(len(data) - width + 1, width), strides=(1, 1),
                                              writeable=False)
    return windows[row_starts]


def _fixed_size_strings(rows: np.ndarray) -> pa.StringArray:
    """Each row of a byte matrix as one string (ASCII bytes, so valid UTF-8)."""
    count, width = rows.shape
    values = np.ascontiguousarray(rows)
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int32) if width else np.zeros(count + 1, np.int32)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(values))


def _nul_lines(block: bytes, ends: np.ndarray) -> np.ndarray:
    """Indices of the lines holding a NUL."""
    data = np.frombuffer(block, dtype=np.uint8)
    at = np.concatenate([np.flatnonzero(data[i: i + _SCAN_BYTES] == 0) + i for i in range(0, len(data), _SCAN_BYTES)])
    return np.unique(np.searchsorted(ends, at))
