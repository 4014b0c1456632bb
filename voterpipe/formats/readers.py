"""Parsing raw state files: UTF-8 blocks of whole lines (formats/decoding.py) split into delimited
or fixed-width fields.

Every file is read in blocks of whole lines, so memory stays bounded by the block size. Each
parsed row keeps its 1-based physical line number; lines that cannot be parsed become rejects.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from voterpipe.formats.decoding import TextBlocks  # noqa: F401 (still importable from here)
from voterpipe.formats.fixed_width import cut_fields

_SCAN_BYTES = 1 << 20


# ---- lines within a block ----------------------------------------------------------------------

@dataclass
class Reject:
    line_number: int
    raw_line: str
    reason: str


@dataclass
class ParsedBlock:
    """Rows parsed from one block: layout column name -> raw strings, and where each row came from."""

    columns: dict[str, pa.Array]
    line_numbers: np.ndarray  # int64, 1-based physical line of each row
    rejects: list[Reject]
    lines: int  # physical lines in the block (rows read)
    _block: bytes = field(repr=False, default=b"")
    _first_line: int = 1
    _bounds: list = field(repr=False, default_factory=list)  # [starts, ends], computed on demand
    ends_chunk: bool = True  # the last piece of a chunk (TextBlocks.pieces): its outputs are written

    @property
    def num_rows(self) -> int:
        return len(self.line_numbers)

    def raw_line(self, line_number: int) -> str:
        if not self._bounds:
            self._bounds.extend(line_bounds(self._block))
        starts, ends = self._bounds
        i = line_number - self._first_line
        return self._block[starts[i]: ends[i]].decode("utf-8", errors="replace")

    def filter(self, keep: np.ndarray) -> "ParsedBlock":
        mask = pa.array(keep, type=pa.bool_())
        return ParsedBlock(
            {name: pc.filter(arr, mask) for name, arr in self.columns.items()},
            self.line_numbers[keep], self.rejects, self.lines, self._block, self._first_line, self._bounds,
        )


def line_bounds(block: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without the LF) offsets of every line of an LF-terminated block."""
    data = np.frombuffer(block, dtype=np.uint8)
    # In pieces of 1 MiB: the comparison stays in cache (twice as fast as one pass on a large block).
    pieces = [np.flatnonzero(data[at: at + _SCAN_BYTES] == 10) + at for at in range(0, len(data), _SCAN_BYTES)]
    ends = np.concatenate(pieces).astype(np.int64) if pieces else np.zeros(0, dtype=np.int64)
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    return starts, ends


def _drop_lines(block: bytes, starts: np.ndarray, ends: np.ndarray, drop: np.ndarray) -> bytes:
    """The block without the lines whose indices are in `drop` (few)."""
    parts, position = [], 0
    for i in drop:
        parts.append(block[position: starts[i]])
        position = ends[i] + 1
    parts.append(block[position:])
    return b"".join(parts)


def _odd_quote_lines(block: bytes, starts: np.ndarray, ends: np.ndarray, quote: str) -> np.ndarray:
    """Indices of lines with an odd number of quote characters (a quoted value spilling over a line)."""
    values = np.frombuffer(block, dtype=np.uint8)
    quote_positions = np.flatnonzero(values == ord(quote))
    per_line = np.searchsorted(quote_positions, ends) - np.searchsorted(quote_positions, starts)
    return np.flatnonzero(per_line % 2 == 1)


def _locate_lines(block: bytes, texts: list[str]) -> list[int]:
    """Start offsets of lines whose full text is one of `texts` (each occurrence counted once).

    The CSV reader reports invalid rows mostly in file order, so each search starts where the
    previous one ended and wraps around only when needed: about one pass over the block.
    """
    taken: set[int] = set()
    hint = 0
    for text in texts:
        needle = text.encode("utf-8") + b"\n"
        position = _find_line(block, needle, hint, taken)
        if position < 0:
            position = _find_line(block, needle, 0, taken)
        if position < 0:
            raise RuntimeError("internal error: an invalid CSV row was not found in its block")
        taken.add(position)
        hint = position + 1
    return sorted(taken)


def _find_line(block: bytes, needle: bytes, start: int, taken: set[int]) -> int:
    """Offset of the first line from `start` that is `needle` (text and LF) and not taken; -1 if none."""
    position = block.find(needle, start)
    while position >= 0 and (position in taken or (position > 0 and block[position - 1] != 10)):
        position = block.find(needle, position + 1)
    return position


def split_header(line: str, delimiter: str, quote: str) -> list[str]:
    """Split one line the way the CSV reader will (header names, detection)."""
    if quote:
        return next(csv.reader([line], delimiter=delimiter, quotechar=quote))
    return line.split(delimiter)


def sniff_delimiter(line: str, candidates: list[str]) -> str:
    counts = [(line.count(c), -i, c) for i, c in enumerate(candidates)]
    best = max(counts)
    if best[0] == 0:
        raise ValueError(f"none of the delimiters {candidates!r} occurs in the first line")
    return best[2]


def parse_delimited(
    block: bytes, first_line: int, *, delimiter: str, quote: str, ncols: int, include: dict[str, int]
) -> ParsedBlock:
    """Parse an LF-terminated block of delimited lines; `include` maps wanted names to positions."""
    starts, ends = line_bounds(block)
    nlines = len(ends)
    rejects: list[Reject] = []
    table, invalid = _read_csv_block(block, delimiter, quote, ncols, include)
    if table.num_rows + len(invalid) != nlines:
        if not quote:
            raise RuntimeError(f"lines {first_line}-{first_line + nlines - 1}: parsed {table.num_rows} rows "
                               f"and {len(invalid)} invalid rows from {nlines} lines")
        # A quoted value ran over a line break: reject such lines, then every line is one row.
        dropped = _odd_quote_lines(block, starts, ends, quote)
        for i in dropped:
            rejects.append(Reject(first_line + int(i), block[starts[i]: ends[i]].decode("utf-8", "replace"),
                                  "unbalanced_quotes: a quoted value runs past the end of the line"))
        parsed = parse_delimited(_drop_lines(block, starts, ends, dropped), 0, delimiter=delimiter,
                                 quote=quote, ncols=ncols, include=include)
        kept = np.setdiff1d(np.arange(nlines, dtype=np.int64), dropped, assume_unique=True)
        line_numbers = first_line + kept[parsed.line_numbers]  # parsed numbers are 0-based indices here
        for reject in parsed.rejects:
            rejects.append(Reject(first_line + int(kept[reject.line_number]), reject.raw_line, reject.reason))
        return ParsedBlock(parsed.columns, line_numbers, rejects, nlines, block, first_line)

    remaining = np.arange(nlines, dtype=np.int64)
    if invalid:
        actual_by_text = {text: actual for text, actual in invalid}
        offsets = _locate_lines(block, [text for text, _ in invalid])
        invalid_idx = np.searchsorted(starts, offsets)  # each offset starts a line
        for offset, i in zip(offsets, invalid_idx):
            text = block[offset: ends[i]].decode("utf-8", errors="replace")
            rejects.append(Reject(first_line + int(i), text,
                                  f"wrong_field_count: {actual_by_text[text]} fields, expected {ncols}"))
        remaining = np.setdiff1d(remaining, invalid_idx, assume_unique=True)

    columns = {name: table.column(f"f{pos}").combine_chunks() for name, pos in include.items()}
    parsed = ParsedBlock(columns, first_line + remaining, rejects, nlines, block, first_line, [starts, ends])
    blank = np.flatnonzero(starts == ends)
    if len(blank):
        blank_lines = first_line + blank
        for line_number in blank_lines:
            rejects.append(Reject(int(line_number), "", "blank_line"))
        parsed = parsed.filter(~np.isin(parsed.line_numbers, blank_lines))
    return parsed


def _read_csv_block(block: bytes, delimiter: str, quote: str, ncols: int, include: dict[str, int]):
    invalid: list[tuple[str, int]] = []

    def on_invalid(row) -> str:
        invalid.append((row.text, row.actual_columns))
        return "skip"

    names = [f"f{i}" for i in range(ncols)]
    wanted = [f"f{pos}" for pos in include.values()]
    try:
        return _read_csv(block, names, wanted, delimiter, quote, on_invalid, 1 << 22), invalid
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
        invalid.clear()  # a line longer than Arrow's block: read the whole block as one
        return _read_csv(block, names, wanted, delimiter, quote, on_invalid, len(block) + 1), invalid


def _read_csv(block: bytes, names, wanted, delimiter: str, quote: str, on_invalid, block_size: int) -> pa.Table:
    return pacsv.read_csv(
        pa.py_buffer(block),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=block_size),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, quote_char=quote or False, double_quote=True,
            newlines_in_values=False, ignore_empty_lines=False, invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in wanted}, include_columns=wanted,
            strings_can_be_null=False, quoted_strings_can_be_null=False,
        ),
    )


def parse_fixed_width(
    block: bytes, first_line: int, *, widths: list[tuple[str, int, int]], line_length: tuple[int, int],
    include: set[str] | None = None,
) -> ParsedBlock:
    """Slice an LF-terminated block of fixed-width lines; wrong-length lines become rejects.

    Positions count characters. An ASCII line's characters are its bytes, so its fields are byte
    slices (cheap); only lines holding other characters are sliced by code point (fixed_width.py).
    """
    starts, ends = line_bounds(block)
    nlines = len(ends)
    offsets = np.empty(nlines + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:] = ends + 1
    # Each value is a line with its LF: a field reaching past a short line's end ends in that LF.
    with_lf = pa.StringArray.from_buffers(nlines, pa.py_buffer(offsets), pa.py_buffer(block))
    wide_index = _non_ascii_lines(block, starts, ends)
    lengths = ends - starts
    if len(wide_index):
        wide_lines = with_lf.take(pa.array(wide_index))
        lengths[wide_index] = pc.utf8_length(wide_lines).to_numpy(zero_copy_only=False) - 1
    low, high = line_length
    good = (lengths >= low) & (lengths <= high)
    rejects = []
    for i in np.flatnonzero(~good):
        text = block[starts[i]: ends[i]].decode("utf-8", "replace")
        reason = "blank_line" if lengths[i] == 0 else (
            f"wrong_line_length: {int(lengths[i])} characters, expected {low}-{high}")
        rejects.append(Reject(first_line + int(i), text, reason))
    kept = np.flatnonzero(good)
    wanted = [(name, start, end) for name, start, end in widths if include is None or name in include]
    columns = cut_fields(block, starts, ends, kept, wide_index, with_lf, wanted)
    return ParsedBlock(columns, first_line + kept.astype(np.int64), rejects, nlines,
                       block, first_line, [starts, ends])


def _non_ascii_lines(block: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Indices of the lines holding a byte above 0x7F (a character of more than one byte)."""
    if block.isascii():
        return np.zeros(0, dtype=np.int64)
    data = np.frombuffer(block, dtype=np.uint8)
    high = np.concatenate([np.flatnonzero(data[at: at + _SCAN_BYTES] >= 0x80) + at
                           for at in range(0, len(data), _SCAN_BYTES)])
    return np.flatnonzero(np.searchsorted(high, ends) > np.searchsorted(high, starts))
