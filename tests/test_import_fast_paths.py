"""The importer's fast paths give exactly what the general ones give: fixed-width fields cut as bytes
on ASCII lines and by code point on the others, the unquoted first pass of a latest_per_voter file,
and the reader's hashing and line-start BOM handling."""

from __future__ import annotations

import codecs
import hashlib

import numpy as np
import pytest

from voterpipe.formats.decoding import TextBlocks
from voterpipe.formats.readers import parse_delimited, parse_fixed_width
from voterpipe.formats.snapshots import unquoted_fields

WIDTHS = [("code", 0, 3), ("name", 3, 9), ("tail", 9, 12)]


def _by_characters(lines: list[str], low: int, high: int) -> tuple[list[int], dict[str, list[str]]]:
    """What a fixed-width parse must give: the lines of a good length, cut by character."""
    kept = [i for i, line in enumerate(lines) if low <= len(line) <= high]
    columns = {name: [lines[i][start:end].replace("\x00", "") for i in kept] for name, start, end in WIDTHS}
    return kept, columns


@pytest.mark.parametrize("lines", [
    ["001ABCDEF XY", "002ÉLODIE Z!", "003A\x00CDEFGHI", "04short", "005ÀÉÎÕÜ€abc", "", "006ASCII_ONLY"],
    ["001ABCDEF XY", "002ÉL\x00DIE Z!", "003ABCDEF\x00YZ", "0\x00short"],   # NULs on wide and bad lines
    ["001ABCDEF XY", "002ABCDEF XYZ", "003ABCDEF X"],          # ASCII only, a long and a short line
    ["ÉÉÉÉÉÉÉÉÉÉÉÉ", "ÀÀÀÀÀÀÀÀÀÀÀ"],                            # no ASCII line
])
def test_fixed_width_fields_are_characters_whatever_the_bytes(lines):
    block = "".join(line + "\n" for line in lines).encode("utf-8")
    parsed = parse_fixed_width(block, 10, widths=WIDTHS, line_length=(11, 12))
    kept, expected = _by_characters(lines, 11, 12)
    assert parsed.line_numbers.tolist() == [10 + i for i in kept]
    assert {name: values.to_pylist() for name, values in parsed.columns.items()} == expected
    rejected = sorted(r.line_number for r in parsed.rejects)
    assert rejected == [10 + i for i in range(len(lines)) if i not in kept]
    for reject in parsed.rejects:
        assert reject.raw_line == lines[reject.line_number - 10]
        length = len(reject.raw_line)
        assert reject.reason == ("blank_line" if length == 0 else
                                 f"wrong_line_length: {length} characters, expected 11-12")


def test_unquoted_first_pass_reads_the_rows_the_csv_reader_loads():
    lines = ["a\t1\tx\tlast1", "b\t2\ty", "", "c\t3\tz\tlast3\textra", "d\t\t\t", "é\t4\tw\tlast€", "e\t5\tv\tl5"]
    block = "".join(line + "\n" for line in lines).encode("utf-8")
    include = {"first": 0, "second": 1, "last": 3}
    full = parse_delimited(block, 5, delimiter="\t", quote="", ncols=4, include=include)
    for wanted in (include, {"second": 1}, {"first": 0}):
        fast = unquoted_fields(block, 5, delimiter="\t", ncols=4, include=wanted)
        assert fast.line_numbers.tolist() == full.line_numbers.tolist()
        assert fast.lines == full.lines == len(lines)
        assert {n: v.to_pylist() for n, v in fast.columns.items()} == {
            n: full.columns[n].to_pylist() for n in wanted}


def test_single_column_first_pass_leaves_out_blank_lines():
    block = b"1\n\n2\n"
    fast = unquoted_fields(block, 1, delimiter="|", ncols=1, include={"id": 0})
    full = parse_delimited(block, 1, delimiter="|", quote="", ncols=1, include={"id": 0})
    assert fast.line_numbers.tolist() == full.line_numbers.tolist() == [1, 3]
    assert fast.columns["id"].to_pylist() == ["1", "2"]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
def test_reader_hashes_the_stored_bytes_and_strips_line_start_boms(tmp_path, encoding):
    bom = codecs.BOM_UTF8 if encoding == "utf-8" else codecs.BOM_UTF8.decode("latin-1").encode("latin-1")
    body = b"id|name\n" + b"".join(b"%d|n%d\n" % (i, i) for i in range(5000))
    raw = body + bom + "9|» after a concatenated file's BOM\n".encode(encoding)
    path = tmp_path / "v.txt"
    path.write_bytes(raw)
    blocks = TextBlocks(path, encoding, chunk_rows=100)
    text = b"".join(blocks)
    assert blocks.sha256 == hashlib.sha256(raw).hexdigest() and blocks.bytes_read == len(raw)
    assert blocks.counters.boms_stripped == 1
    assert text.endswith("9|» after a concatenated file's BOM\n".encode("utf-8"))
    assert np.frombuffer(text, np.uint8).tolist().count(10) == 5002


SNAPSHOT_LAYOUT = """
name = "zw_snapshots"
state = "zw"
[voters]
patterns = ["ZW_*.txt"]
delimiter = "\\t"
header = true
columns = ["SNAP", "ID", "LAST"]
extra = ["SNAP"]
latest_per_voter = { column = "SNAP", date = ["%Y-%m-%d"] }
[voters.fields]
voter_id = "ID"
last_name = "LAST"
"""


@pytest.mark.parametrize("chunk_rows", [3, 10_000])
def test_latest_per_voter_first_pass_reads_what_the_csv_reader_reads(tmp_path, chunk_rows):
    from voterpipe.formats.layouts import detect_file, load_layouts
    from voterpipe.formats.loading import parse_blocks
    from voterpipe.formats.snapshots import _id_and_date_blocks

    (tmp_path / "zw_snapshots.toml").write_text(SNAPSHOT_LAYOUT)
    rng = np.random.default_rng(7)
    lines = ["SNAP\tID\tLAST"]
    for i in range(3000):
        day = f"20{rng.integers(10, 30)}-0{rng.integers(1, 10)}-1{rng.integers(0, 9)}"
        line = f"{day}\t{rng.integers(0, 800)}\tN{i}"
        kind = rng.integers(0, 40)
        lines.append(line + "\tX" if kind == 0 else "" if kind == 1 else f"{day}\t{i}" if kind == 2 else line)
    path = tmp_path / "ZW_1.txt"
    path.write_text("\n".join(lines) + "\n")
    detected = detect_file(path, list(load_layouts(tmp_path).values()))
    fast = list(_id_and_date_blocks(TextBlocks(path, "utf-8", chunk_rows), detected, ["ID", "SNAP"]))
    full = list(parse_blocks(TextBlocks(path, "utf-8", chunk_rows), detected, columns=["ID", "SNAP"]))
    assert sum(p.lines for p in fast) == sum(p.lines for p in full) == len(lines) - 1  # the header is no row
    assert np.concatenate([p.line_numbers for p in fast]).tolist() == \
        np.concatenate([p.line_numbers for p in full]).tolist()
    for column in ("ID", "SNAP"):
        assert [v for p in fast for v in p.columns[column].to_pylist()] == \
            [v for p in full for v in p.columns[column].to_pylist()]


def _chunks(blocks: TextBlocks) -> list[bytes]:
    """The file's chunks, each the join of its pieces."""
    chunks, current = [], []
    for piece, ends_chunk in blocks.pieces():
        current.append(piece)
        if ends_chunk:
            chunks.append(b"".join(current))
            current = []
    assert not current, "the last piece ends a chunk"
    return chunks


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8", "utf-16"])
def test_pieces_of_a_chunk_join_to_the_chunk_read_whole(tmp_path, encoding):
    text = "".join(f"{i}|näme {i}|{'x' * (i % 197)}\r\n" for i in range(40_000)) + "no newline at the end"
    path = tmp_path / "v.txt"
    path.write_bytes(text.encode(encoding))
    whole = TextBlocks(path, "latin-1", chunk_rows=300, piece_bytes=1 << 30)
    pieces = TextBlocks(path, "latin-1", chunk_rows=300, piece_bytes=50_000)
    assert _chunks(pieces) == _chunks(whole) and len(_chunks(whole)) > 3
    assert sum(1 for _ in pieces.pieces()) > 4 * len(_chunks(whole))  # really read in pieces
    assert pieces.sha256 == whole.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pieces.counters == whole.counters


@pytest.mark.parametrize("layout", ["nc_current", "tx_sos", "oh_swvf", "nc_vr_snapshot"])
def test_reading_in_pieces_writes_the_same_files(tmp_path, monkeypatch, layout):
    """Pieces change how a chunk is read, never the output: the Parquet files are byte-identical."""
    from voterpipe import storage
    from voterpipe.demo import all_layout_drops
    from voterpipe.formats import decoding
    from voterpipe.formats.importer import import_drop
    from voterpipe.synth import write_drop

    state, _, snapshot = next(d for d in all_layout_drops() if d[1] == layout)
    write_drop(state, 400, snapshot, seed=3, layout=layout, dirty_rate=0.05, root=tmp_path)
    raw = storage.raw_dir(state, snapshot, tmp_path)
    monkeypatch.setattr(decoding, "HEAD_BYTES", 20_000)  # chunks and pieces small enough for a small drop
    monkeypatch.setattr(decoding, "MIN_BLOCK_BYTES", 30_000)
    files = {}
    for piece_bytes in (1 << 30, 3000):
        monkeypatch.setattr(decoding, "PIECE_BYTES", piece_bytes)
        outputs = {name: tmp_path / f"{piece_bytes}" / f"{name}.parquet" for name in ("voters", "history", "rejects")}
        outputs["voters"].parent.mkdir()
        import_drop(raw, outputs, state, snapshot, chunk_rows=150)
        files[piece_bytes] = {name: path.read_bytes() for name, path in outputs.items()}
    assert files[3000] == files[1 << 30]


@pytest.mark.parametrize("include", [None, {"id", "far"}, {"far"}, {"mid", "id"}])
def test_fixed_width_byte_rows_and_code_point_cuts_agree_with_characters(include):
    """Plain lines are cut as byte rows, odd ones (multi-byte, NUL, short) by code point; fields far
    apart are gathered apart: each kept line's fields are its characters at those positions."""
    widths = [("id", 0, 4), ("mid", 4, 10), ("far", 90, 96), ("gap", 10, 90)]
    rng = np.random.default_rng(11)
    lines = []
    for i in range(3000):
        line = f"{i:04d}" + "".join(rng.choice(list("abcdef  XYZ"), size=92))
        kind = rng.integers(0, 12)
        if kind == 0:
            line = line[:20] + "é€" + line[22:]     # multi-byte characters, same character count
        elif kind == 1:
            line = line[:93] + "\x00" + line[94:]   # a NUL inside a field
        elif kind == 2:
            line = line[:int(rng.integers(0, 96))]  # short: rejected, or kept when the length allows
        lines.append(line)
    block = "".join(line + "\n" for line in lines).encode("utf-8")
    parsed = parse_fixed_width(block, 1, widths=widths, line_length=(93, 96), include=include)
    kept = [i for i, line in enumerate(lines) if 93 <= len(line) <= 96]
    assert parsed.line_numbers.tolist() == [1 + i for i in kept]
    assert list(parsed.columns) == [name for name, _, _ in widths if include is None or name in include]
    for name, start, end in widths:
        if include is None or name in include:
            assert parsed.columns[name].to_pylist() == [lines[i][start:end].replace("\x00", "") for i in kept]


def test_a_small_snapshots_file_read_once_loads_what_two_passes_load(tmp_path, monkeypatch):
    """latest_per_voter: a file parsed once and held gives the same files and manifest as the
    two-pass read of a large one (ids and dates first)."""
    from datetime import date

    from voterpipe.formats import decoding, snapshots
    from voterpipe.formats.importer import import_drop

    (tmp_path / "zw_snapshots.toml").write_text(SNAPSHOT_LAYOUT)
    rng = np.random.default_rng(5)
    lines = ["SNAP\tID\tLAST"]
    for i in range(6000):
        day = f"20{rng.integers(20, 28)}-{rng.integers(1, 13):02d}-{rng.integers(1, 31):02d}"
        voter = "" if i % 97 == 0 else str(rng.integers(0, 2000))
        lines.append(f"{day}\t{voter}\tN{i}" + ("\tX" if i % 89 == 0 else ""))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ZW_1.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(decoding, "HEAD_BYTES", 10_000)  # several chunks, each in pieces
    monkeypatch.setattr(decoding, "MIN_BLOCK_BYTES", 20_000)
    monkeypatch.setattr(decoding, "PIECE_BYTES", 7_000)
    results = {}
    for once in (True, False):
        monkeypatch.setattr(snapshots, "ONE_PASS_MAX_BYTES", 1 << 30 if once else 0)
        outputs = {name: tmp_path / str(once) / f"{name}.parquet" for name in ("voters", "history", "rejects")}
        outputs["voters"].parent.mkdir()
        manifest = import_drop(raw, outputs, "zw", date(2026, 11, 1), chunk_rows=100, formats_dir=tmp_path)
        results[once] = manifest, {name: path.read_bytes() for name, path in outputs.items()}
    assert results[True] == results[False]
    files = results[True][0]["files"][0]
    assert files["rows_skipped"] > 1000 and files["rows_rejected"] > 50 and files["rows_loaded"] > 1000


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
@pytest.mark.parametrize("piece_bytes", [1, 2, 4])
def test_a_line_start_bom_split_across_pieces_is_still_stripped(tmp_path, monkeypatch, encoding, piece_bytes):
    from voterpipe.formats import decoding
    monkeypatch.setattr(decoding, "HEAD_BYTES", 4_000)
    bom = codecs.BOM_UTF8 if encoding == "utf-8" else codecs.BOM_UTF8.decode("latin-1").encode("latin-1")
    body = b"id|name\n" + b"".join(b"%d|n%d\n" % (i, i) for i in range(470))
    assert 4_000 < len(body) < 4_200  # the mark comes after the first read, where pieces are this small
    raw = body + b"8|x\n" + bom + b"9|after\n" + b"10|y\n"
    path = tmp_path / "v.txt"
    path.write_bytes(raw)
    blocks = TextBlocks(path, encoding, chunk_rows=10_000_000, piece_bytes=piece_bytes)
    text = b"".join(blocks)
    assert blocks.counters.boms_stripped == 1
    assert text.endswith(b"\n8|x\n9|after\n10|y\n")
