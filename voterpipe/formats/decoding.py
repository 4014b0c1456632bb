"""Decoding a raw state file into UTF-8 blocks of whole lines, streaming: encodings and byte-order
marks, NULs, undecodable bytes and stray CRs counted, the stored bytes hashed as they are read.
A .gz file or a member of a .zip is read as a stream, never extracted to disk."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from voterpipe.formats.archives import file_size, open_stored

HEAD_BYTES = 1 << 20  # the first block; also what layout detection and block sizing look at
MIN_BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 1 << 30  # Arrow string offsets are 32-bit
# A chunk (about chunk_rows lines) is read and handed on in pieces of whole lines of about this many
# raw bytes: parsing starts before a large chunk is read, and buffers this size are reused (a
# fresh 100+ MB buffer costs more in page faults than the copy into it).
PIECE_BYTES = 16 << 20
GIL_STEP_BYTES = 1 << 20  # text decoded per call (each call holds the GIL)
REPLACEMENT = "\ufffd"

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SINGLE_BYTE_LATIN = {"latin-1", "latin1", "iso-8859-1", "iso8859-1", "l1"}
# In a Latin-1 voter file the C1 control range (0x80-0x9F) is never text: count it as undecodable.
_C1_TABLE = {code: REPLACEMENT for code in range(0x80, 0xA0)}

# A UTF-8 BOM as UTF-8 bytes, and as a Latin-1 file's decoding of it (the bytes of 'ï»¿').
_LINE_START_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF8.decode("latin-1").encode("utf-8"))
_replaced_counter = [0]
_CHUNK_END = object()


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


class _PieceHasher:
    """sha256 of an uncompressed file's pieces, in order, each hashed in a thread of its own while the
    next pieces are read and decoded (hashlib lets go of the GIL); at most `ahead` pieces wait."""

    def __init__(self, ahead: int = 2) -> None:
        self.sha256 = hashlib.sha256()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="hash")
        self._pending: deque[Future] = deque()
        self._ahead = ahead

    def read(self, handle: BinaryIO, size: int) -> bytes:
        piece = handle.read(size)  # a new bytes object: it does not change while it is hashed
        while len(self._pending) >= self._ahead:
            self._pending.popleft().result()
        if piece:
            self._pending.append(self._pool.submit(self.sha256.update, piece))  # one worker: in order
        return piece

    def finish(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)


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

    def __init__(self, path: Path, encoding: str, chunk_rows: int, strip_nul: bool = True, hashed: bool = True,
                 piece_bytes: int | None = None):
        self.path = Path(path)
        self.piece_bytes = max(1, int(piece_bytes or PIECE_BYTES))
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
        self._hasher: _PieceHasher | None = None

    @property
    def bytes_read(self) -> int:
        return self._raw.bytes_read if self._raw else 0

    @property
    def sha256(self) -> str:
        if not self.hashed:
            raise ValueError(f"{self.path.name} was read without hashing")
        if self._hasher is not None:
            return self._hasher.sha256.hexdigest()
        return self._raw.sha256.hexdigest() if self._raw else hashlib.sha256(b"").hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        for piece, _ in self.pieces():
            yield piece

    def pieces(self) -> Iterator[tuple[bytes, bool]]:
        """(whole lines, whether they end a chunk): a chunk is the lines of about chunk_rows lines'
        bytes (the first 1 MiB is one); its lines come in pieces of about piece_bytes. Chunks, not
        pieces, decide the output's row groups, so the piece size never changes the output."""
        held = None
        for item in self._lines():
            if item is _CHUNK_END:
                if held is not None:
                    yield held, True
                held = None
                continue
            if held is not None:
                yield held, False
            held = item

    def _lines(self) -> Iterator:
        """Pieces of whole lines, and _CHUNK_END after each chunk's last piece."""
        compressed = is_gzip(self.path)
        # A .gz file is hashed as its stored bytes are read; any other file (a zip member: its
        # uncompressed bytes) piece by piece, in a thread of its own.
        raw = _HashingReader(open_stored(self.path), self.hashed and compressed)
        hasher = self._hasher = _PieceHasher() if self.hashed and not compressed else None
        self._raw = raw
        handle: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else io.BufferedReader(raw, 1 << 20)
        read = handle.read if hasher is None else (lambda size: hasher.read(handle, size))
        try:
            yield from self._blocks(read)
            # Hash anything the decompressor left unread, so sha256 covers the stored file.
            for rest in iter(lambda: raw._handle.read(1 << 20), b""):
                if raw.sha256 is not None:
                    raw.sha256.update(rest)
                raw.bytes_read += len(rest)
        finally:
            if hasher is not None:
                hasher.finish()
            raw._handle.close()

    def _blocks(self, read: Callable[[int], bytes]) -> Iterator[bytes]:
        piece = read(HEAD_BYTES)
        self.encoding, bom_len = detect_encoding(piece, self.declared_encoding)
        self.bom = bool(bom_len)
        piece = piece[bom_len:]
        single_byte_latin = self.encoding.lower() in _SINGLE_BYTE_LATIN
        decoder = None if single_byte_latin else codecs.getincrementaldecoder(self.encoding)("voterpipe_count_replace")
        read_size = HEAD_BYTES
        chunk_left = 0  # raw bytes of the current chunk not read yet
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
                yield _CHUNK_END
                return
            if first:
                read_size = self._block_size(piece, text)
                first = False
            if chunk_left <= 0:
                yield _CHUNK_END
                chunk_left = read_size
            size = min(self.piece_bytes, chunk_left)
            piece = read(size)
            chunk_left = chunk_left - size if len(piece) == size else 0  # a short read: the file ends

    def _decode(self, decoder, piece: bytes, final: bool) -> bytes:
        """The piece as UTF-8, decoded and encoded a step at a time: each call holds the GIL, and a
        long one would stall the parsing thread at every Arrow call it makes meanwhile."""
        view, parts = memoryview(piece), []
        for at in range(0, max(len(piece), 1), GIL_STEP_BYTES):
            last = at + GIL_STEP_BYTES >= len(piece)
            before = _replaced_counter[0]
            decoded = decoder.decode(view[at: at + GIL_STEP_BYTES], final=final and last)
            self.counters.undecodable_replaced += _replaced_counter[0] - before
            nul = decoded.count("\x00") if "\x00" in decoded else 0  # a search is cheaper than a count
            if nul:
                self.counters.nul_stripped += nul
                if self.strip_nul:
                    decoded = decoded.replace("\x00", "")
            parts.append(decoded.encode("utf-8"))
        return parts[0] if len(parts) == 1 else b"".join(parts)

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
        # The carry is always the start of a line, so a mark split across two pieces is still caught.
        buffer = self._strip_line_start_boms(buffer)
        if at_eof:
            return (buffer if not buffer or buffer.endswith(b"\n") else buffer + b"\n"), b""
        cut = buffer.rfind(b"\n")
        return (b"", buffer + held_cr) if cut < 0 else (buffer[: cut + 1], buffer[cut + 1:] + held_cr)

    def _strip_line_start_boms(self, buffer: bytes) -> bytes:
        """A byte-order mark starting a line is no data (files concatenated): strip and count it."""
        if buffer.isascii() or b"\xbb" not in buffer:  # both marks hold 0xBB: one cheap search, not two
            return buffer
        for mark in _LINE_START_BOMS:
            if mark in buffer:
                count = buffer.count(b"\n" + mark)
                buffer = buffer.replace(b"\n" + mark, b"\n")
                if buffer.startswith(mark):
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
        # A search is cheaper than a count; numpy counts faster than bytes.count, without the GIL.
        nul = int(np.count_nonzero(np.frombuffer(piece, np.uint8) == 0)) if b"\x00" in piece else 0
        if nul:
            self.counters.nul_stripped += nul
            if self.strip_nul:
                piece = piece.replace(b"\x00", b"")
        if piece.isascii():
            return piece, True
        view = memoryview(piece)  # a step at a time, as in _decode: short holds of the GIL
        encoded = b"".join(codecs.latin_1_decode(view[at: at + GIL_STEP_BYTES])[0].encode("utf-8")
                           for at in range(0, len(piece), GIL_STEP_BYTES))
        # C1 controls encode as C2 80..C2 9F: look for them only when a C2 lead byte occurs at all.
        if b"\xc2" not in encoded:
            return encoded, False
        c1 = int(np.count_nonzero(np.frombuffer(piece, np.uint8) - np.uint8(0x80) < 0x20))  # bytes 0x80-0x9F
        if not c1:
            return encoded, False
        self.counters.undecodable_replaced += c1
        return piece.decode("latin-1").translate(_C1_TABLE).encode("utf-8"), False
