"""Streaming readers for raw state files: decoding to UTF-8 line blocks, delimited and fixed-width parsing.
A .gz file or a member of a .zip is read as a stream, never extracted to disk.

Every file is read in blocks of whole lines, so memory stays bounded by the block size. Each
parsed row keeps its 1-based physical line number; lines that cannot be parsed become rejects.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from voterpipe.formats.archives import file_size, open_stored

HEAD_BYTES = 1 << 20  # the first block; also what layout detection and block sizing look at
MIN_BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 1 << 30  # Arrow string offsets are 32-bit
REPLACEMENT = "\ufffd"
_SCAN_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SINGLE_BYTE_LATIN = {"latin-1", "latin1", "iso-8859-1", "iso8859-1", "l1"}
# In a Latin-1 voter file the C1 control range (0x80-0x9F) is never text: count it as undecodable.
_C1_TABLE = {code: REPLACEMENT for code in range(0x80, 0xA0)}

_C1_DELETE = bytes(range(0x80, 0xA0))
# A UTF-8 BOM as UTF-8 bytes, and as a Latin-1 file's decoding of it (the bytes of 'ï»¿').
_LINE_START_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF8.decode("latin-1").encode("utf-8"))
_replaced_counter = [0]


def _count_and_replace(error: UnicodeDecodeError) -> tuple[str, int]:
    _replaced_counter[0] += error.end - error.start
    return REPLACEMENT, error.end


codecs.register_error("voterpipe_count_replace", _count_and_replace)


def is_gzip(path: Path) -> bool:
    return Path(path).suffix.lower() == ".gz"


class _HashingReader(io.RawIOBase):
    """Wraps a binary file: hashes and counts the bytes as they are read (the stored file's bytes)."""

    def __init__(self, handle: BinaryIO, hashed: bool = True):
        self._handle = handle
        self.sha256 = hashlib.sha256() if hashed else None
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._handle.readinto(buffer) or 0  # straight into the caller's buffer: no extra copy
        if n:
            if self.sha256 is not None:
                self.sha256.update(memoryview(buffer)[:n])
            self.bytes_read += n
        return n

    def close(self) -> None:
        self._handle.close()
        super().close()


def detect_encoding(head: bytes, declared: str) -> tuple[str, int]:
    """(encoding, BOM length): a byte-order mark wins over the layout's declared encoding."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, len(bom)
    return declared, 0


def _open_decompressed(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if is_gzip(path) else io.BufferedReader(open_stored(path))


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of the (decompressed) file."""
    with _open_decompressed(path) as handle:
        return handle.read(size)


def first_line(path: Path, declared_encoding: str) -> tuple[str, str, bool]:
    """(first line as text, encoding used, had BOM). Raises ValueError for an empty file."""
    try:
        head = read_head(path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # a .gz cut short or damaged
        raise ValueError(f"{Path(path).name}: compressed file is damaged or ends early ({exc})") from None
    if not head:
        raise ValueError(f"{Path(path).name}: file is empty")
    encoding, bom = detect_encoding(head, declared_encoding)
    text = head[bom:].decode(encoding, errors="replace").replace("\x00", "")
    line = text.split("\n", 1)[0].rstrip("\r").split("\r", 1)[0]  # classic Mac files end lines with CR
    return line, encoding, bool(bom)


@dataclass
class DecodeCounters:
    nul_stripped: int = 0
    undecodable_replaced: int = 0
    stray_cr_replaced: int = 0
    boms_stripped: int = 0  # byte-order marks starting a line inside the file (files concatenated)


class TextBlocks:
    """A raw file as UTF-8 byte blocks of whole lines (LF-terminated), with decode counters.

    NUL characters are stripped and counted, undecodable bytes become U+FFFD and are counted,
    CRLF becomes LF and a lone CR (which would split a row) becomes a counted space.
    """

    def __init__(self, path: Path, encoding: str, chunk_rows: int, strip_nul: bool = True, hashed: bool = True):
        self.path = Path(path)
        self.hashed = hashed  # False for a pass that is not the file's record (latest_per_voter's first)
        # Fixed-width files keep NULs (counted) so positions do not shift; fields drop them later.
        self.strip_nul = strip_nul
        self.chunk_rows = max(1, int(chunk_rows))
        self.declared_encoding = encoding
        self.encoding = encoding
        self.bom = False
        self.cr_line_endings = False  # a classic Mac file: CR alone ends every line
        self.counters = DecodeCounters()
        self.total_bytes = file_size(self.path)
        self._raw: _HashingReader | None = None

    @property
    def bytes_read(self) -> int:
        return self._raw.bytes_read if self._raw else 0

    @property
    def sha256(self) -> str:
        if not self.hashed:
            raise ValueError(f"{self.path.name} was read without hashing")
        return self._raw.sha256.hexdigest() if self._raw else hashlib.sha256(b"").hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        raw = _HashingReader(open_stored(self.path), self.hashed)  # sha256 of a zip member: its uncompressed bytes
        self._raw = raw
        handle: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip(self.path) else io.BufferedReader(raw, 1 << 20)
        try:
            yield from self._blocks(handle)
            # Hash anything the decompressor left unread, so sha256 covers the stored file.
            for rest in iter(lambda: raw._handle.read(1 << 20), b""):
                if raw.sha256 is not None:
                    raw.sha256.update(rest)
                raw.bytes_read += len(rest)
        finally:
            raw._handle.close()

    def _blocks(self, handle: BinaryIO) -> Iterator[bytes]:
        piece = handle.read(HEAD_BYTES)
        self.encoding, bom_len = detect_encoding(piece, self.declared_encoding)
        self.bom = bool(bom_len)
        piece = piece[bom_len:]
        single_byte_latin = self.encoding.lower() in _SINGLE_BYTE_LATIN
        decoder = None if single_byte_latin else codecs.getincrementaldecoder(self.encoding)("voterpipe_count_replace")
        read_size = HEAD_BYTES
        carry = b""
        first = True
        while True:
            at_eof = not piece
            text, text_ascii = self._from_latin1(piece) if single_byte_latin else \
                (self._decode(decoder, piece, at_eof), False)
            if first:
                self.cr_line_endings = b"\r" in text and b"\n" not in text
            if self.cr_line_endings:
                text = text.replace(b"\r", b"\n")
            block, carry = self._whole_lines(carry, text, text_ascii, at_eof)
            if block:
                yield block
            if at_eof:
                return
            if first:
                read_size = self._block_size(piece, text)
                first = False
            piece = handle.read(read_size)

    def _decode(self, decoder, piece: bytes, final: bool) -> bytes:
        before = _replaced_counter[0]
        decoded = decoder.decode(piece, final=final)
        self.counters.undecodable_replaced += _replaced_counter[0] - before
        nul = decoded.count("\x00") if "\x00" in decoded else 0  # a search is cheaper than a count
        if nul:
            self.counters.nul_stripped += nul
            if self.strip_nul:
                decoded = decoded.replace("\x00", "")
        return decoded.encode("utf-8")

    def _whole_lines(self, carry: bytes, text: bytes, text_ascii: bool, at_eof: bool) -> tuple[bytes, bytes]:
        """(the whole lines of carry + text, cleaned of CRs and line-start BOMs; the partial last line)."""
        if not at_eof and b"\r" not in text and b"\r" not in carry and b"\xbb" not in carry \
                and (text_ascii or b"\xbb" not in text):
            # Nothing to clean (both BOM forms hold 0xBB): the lines are joined to the carry in one copy.
            cut = text.rfind(b"\n")
            return (b"", carry + text) if cut < 0 else (b"".join((carry, memoryview(text)[: cut + 1])), text[cut + 1:])
        buffer = carry + text
        if not at_eof and buffer.endswith(b"\r"):
            buffer, held_cr = buffer[:-1], b"\r"
        else:
            held_cr = b""
        stray = 0
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
            stray = buffer.count(b"\r") if b"\r" in buffer else 0
        if stray:
            self.counters.stray_cr_replaced += stray
            buffer = buffer.replace(b"\r", b" ")
        buffer = self._strip_line_start_boms(buffer, at_line_start=not carry)
        if at_eof:
            return (buffer if not buffer or buffer.endswith(b"\n") else buffer + b"\n"), b""
        cut = buffer.rfind(b"\n")
        return (b"", buffer + held_cr) if cut < 0 else (buffer[: cut + 1], buffer[cut + 1:] + held_cr)

    def _strip_line_start_boms(self, buffer: bytes, at_line_start: bool) -> bytes:
        """A byte-order mark starting a line is no data (files concatenated): strip and count it."""
        if buffer.isascii() or b"\xbb" not in buffer:  # both marks hold 0xBB: one cheap search, not two
            return buffer
        for mark in _LINE_START_BOMS:
            if mark in buffer:
                count = buffer.count(b"\n" + mark)
                buffer = buffer.replace(b"\n" + mark, b"\n")
                if at_line_start and buffer.startswith(mark):
                    buffer, count = buffer[len(mark):], count + 1
                self.counters.boms_stripped += count
        return buffer

    def _block_size(self, raw_piece: bytes, text: bytes) -> int:
        """Raw bytes per read so a block holds about chunk_rows lines."""
        lines = max(1, text.count(b"\n"))
        per_line = max(1.0, len(raw_piece) / lines)
        return int(min(MAX_BLOCK_BYTES // 2, max(MIN_BLOCK_BYTES, per_line * self.chunk_rows)))

    def _from_latin1(self, piece: bytes) -> tuple[bytes, bool]:
        """(the piece as UTF-8, whether it is all ASCII)."""
        nul = piece.count(b"\x00") if b"\x00" in piece else 0  # a search is cheaper than a count
        if nul:
            self.counters.nul_stripped += nul
            if self.strip_nul:
                piece = piece.replace(b"\x00", b"")
        if piece.isascii():
            return piece, True
        encoded = piece.decode("latin-1").encode("utf-8")
        # C1 controls encode as C2 80..C2 9F: look for them only when a C2 lead byte occurs at all.
        if b"\xc2" not in encoded:
            return encoded, False
        c1 = len(piece) - len(piece.translate(None, _C1_DELETE))
        if not c1:
            return encoded, False
        self.counters.undecodable_replaced += c1
        return piece.decode("latin-1").translate(_C1_TABLE).encode("utf-8"), False


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
    slices (cheap); only lines holding other characters are sliced by code point.
    """
    starts, ends = line_bounds(block)
    nlines = len(ends)
    offsets = np.empty(nlines + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:] = ends + 1
    # Each value is a line with its LF: a field reaching past a short line's end ends in that LF.
    with_lf = pa.StringArray.from_buffers(nlines, pa.py_buffer(offsets), pa.py_buffer(block))
    wide_index = _non_ascii_lines(block, starts, ends)
    wide_lines = with_lf.take(pa.array(wide_index)) if len(wide_index) else None
    lengths = ends - starts
    if wide_lines is not None:
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
    keep = None if len(kept) == nlines else pa.array(good)
    wide = None
    if wide_lines is not None:
        wide = np.zeros(nlines, dtype=bool)
        wide[wide_index] = True
        wide = pa.array(wide)
    shortest = int(lengths[kept].min()) if len(kept) else 0
    as_bytes = with_lf.view(pa.binary())
    columns = {}
    with_nul = _fields_with_nul(block, starts, ends, wide_index, widths) if b"\x00" in block else set()
    for name, start, end in widths:
        if include is None or name in include:
            values = pc.binary_slice(as_bytes, start, end).view(pa.string())
            if wide is not None:  # a byte slice may cut a character: slice those lines by code point
                values = pc.replace_with_mask(values, wide, pc.utf8_slice_codeunits(wide_lines, start, end))
            values = values if keep is None else values.filter(keep)
            if end > shortest:  # values never hold an LF but the one ending a short line
                values = pc.utf8_rtrim(values, characters="\n")
            columns[name] = pc.replace_substring(values, "\x00", "") if name in with_nul else values
    return ParsedBlock(columns, first_line + kept.astype(np.int64), rejects, nlines,
                       block, first_line, [starts, ends])


def _fields_with_nul(block: bytes, starts: np.ndarray, ends: np.ndarray, wide_index: np.ndarray,
                     widths: list[tuple[str, int, int]]) -> set[str]:
    """The fields a NUL falls in (every field when a NUL is on a line of multi-byte characters)."""
    data = np.frombuffer(block, dtype=np.uint8)
    at = np.concatenate([np.flatnonzero(data[i: i + _SCAN_BYTES] == 0) + i for i in range(0, len(data), _SCAN_BYTES)])
    line = np.searchsorted(ends, at)  # the line holding each NUL (NUL is no LF, so ends[line] > at)
    if np.isin(line, wide_index).any():
        return {name for name, _, _ in widths}
    position = at - starts[line]
    return {name for name, start, end in widths if ((position >= start) & (position < end)).any()}


def _non_ascii_lines(block: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Indices of the lines holding a byte above 0x7F (a character of more than one byte)."""
    if block.isascii():
        return np.zeros(0, dtype=np.int64)
    data = np.frombuffer(block, dtype=np.uint8)
    high = np.concatenate([np.flatnonzero(data[at: at + _SCAN_BYTES] >= 0x80) + at
                           for at in range(0, len(data), _SCAN_BYTES)])
    return np.flatnonzero(np.searchsorted(high, ends) > np.searchsorted(high, starts))
