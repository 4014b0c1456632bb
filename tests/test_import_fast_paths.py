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
