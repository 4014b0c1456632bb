"""Layout files, layout detection by header, and the vectorised normalisers (no Luigi)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from voterpipe import schema
from voterpipe.formats.layouts import LayoutError, detect_file, layouts_for_state, load_layouts
from voterpipe.formats.normalise import join_present, map_codes, parse_dates, parse_year, parse_zip
from voterpipe.formats.readers import TextBlocks, parse_delimited, parse_fixed_width

EXPECTED_LAYOUTS = {"nc_current", "nc_pre2022", "oh_swvf", "fl_extract", "mi_csv", "mi_fixed", "wa_vrdb"}


def test_every_shipped_layout_loads_and_maps_onto_the_canonical_schema():
    layouts = load_layouts()
    assert EXPECTED_LAYOUTS <= set(layouts)
    for layout in layouts.values():
        assert set(layout.voters.fields) <= set(schema.VOTERS.names)
        assert "voter_id" in layout.voters.fields
        if layout.history is not None and layout.history.shape == "long":
            assert set(layout.history.fields) <= set(schema.HISTORY.names)
        for table in layout.codes.values():
            values = set(table.exact.values()) | {v for _, v in table.contains} | {table.default, table.empty}
            values.discard(None)
            if table.name == "status":
                assert values <= set(schema.STATUS_VALUES)
            if table.name == "voting_method":
                assert values <= set(schema.VOTING_METHODS)
            if table.name == "election_type":
                assert values <= set(schema.ELECTION_TYPES)
            if table.name == "party":
                assert values <= {"DEM", "REP", "UNA", "LIB", "GRE", "OTH"}


def test_nc_pre2022_extends_nc_current_and_never_loads_ssn():
    layouts = load_layouts()
    assert layouts["nc_pre2022"].voters.fields == layouts["nc_current"].voters.fields
    assert len(layouts["nc_pre2022"].voters.columns) == 71
    assert len(layouts["nc_current"].voters.columns) == 67
    assert "ssn" in layouts["nc_current"].voters.never_load


def test_a_malformed_layout_file_is_rejected_with_its_name(tmp_path):
    (tmp_path / "xx_bad.toml").write_text(
        'name = "xx_bad"\nstate = "xx"\n[voters]\npatterns = ["a.txt"]\ncolumns = ["id"]\n'
        '[voters.fields]\nvoter_id = "id"\nbirth_colour = "id"\n')
    with pytest.raises(LayoutError, match="xx_bad.toml.*birth_colour"):
        load_layouts(tmp_path)


def test_synth_table_is_optional_inherited_and_checked(tmp_path):
    layouts = load_layouts()
    current, pre2022 = layouts["nc_current"].synth, layouts["nc_pre2022"].synth
    assert pre2022["voters"]["columns"] == current["voters"]["columns"]  # extends merges [synth] too
    assert pre2022["voters"]["encoding"] == "utf-16" and "encoding" not in current["voters"]
    base = 'name = "xx_ok"\nstate = "xx"\n[voters]\npatterns = ["a.txt"]\ncolumns = ["id"]\n' \
           '[voters.fields]\nvoter_id = "id"\n'
    (tmp_path / "xx_ok.toml").write_text(base)
    assert load_layouts(tmp_path)["xx_ok"].synth == {}
    for bad, reason in (('[synth]\ncolour = "red"\n', r"\[synth\] has unknown keys \['colour'\]"),
                        ('[synth.voters]\nfiles = "a.txt"\n', r"\[synth.voters\] has unknown keys"),
                        ('[synth.voters.columns]\nid = { source = "voter_id", size = 3 }\n', "id must be"),
                        ('[synth.voters.columns]\nid = { source = "voter_id", value = "1" }\n', "both")):
        (tmp_path / "xx_ok.toml").write_text(base + bad)
        with pytest.raises(LayoutError, match=r"xx_ok.toml: .*" + reason):
            load_layouts(tmp_path)


NC_COLUMNS = load_layouts()["nc_current"].voters.columns


def _write(path: Path, lines: list[str], encoding: str = "latin-1") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_nc_layout_is_told_apart_by_header(tmp_path):
    layouts = layouts_for_state("nc")
    current = _write(tmp_path / "ncvoter_Statewide.txt", ["\t".join(NC_COLUMNS)])
    assert detect_file(current, layouts).layout.name == "nc_current"

    wide = list(NC_COLUMNS) + ["hava_id_req", "ssn", "no_dl_ssn_chkbx"]
    variant = _write(tmp_path / "ncvoter1.txt", ["\t".join(wide)])
    found = detect_file(variant, layouts)
    assert found.layout.name == "nc_current" and found.column_index["ssn"] == 68

    old = load_layouts()["nc_pre2022"].voters.columns
    pre = tmp_path / "ncvoter2.txt"
    pre.write_bytes(b"\xff\xfe" + ("\t".join(f'"{c}"' for c in old) + "\r\n").encode("utf-16-le"))
    found = detect_file(pre, layouts)
    assert (found.layout.name, found.encoding, found.bom) == ("nc_pre2022", "utf-16-le", True)
    assert found.column_index["ncid"] == 68


def test_unknown_header_error_names_the_file_and_the_header(tmp_path):
    bad = _write(tmp_path / "ncvoter_Statewide.txt", ["voter\tcolour\tshoe_size", "1\tred\t9"])
    with pytest.raises(LayoutError) as info:
        detect_file(bad, layouts_for_state("nc"))
    message = str(info.value)
    assert "ncvoter_Statewide.txt" in message and "shoe_size" in message and "nc_current" in message


def test_empty_file_is_a_clear_error(tmp_path):
    empty = tmp_path / "ncvoter_Statewide.txt"
    empty.write_bytes(b"")
    with pytest.raises(LayoutError, match="ncvoter_Statewide.txt: file is empty"):
        detect_file(empty, layouts_for_state("nc"))


def test_files_with_other_names_are_not_state_files(tmp_path):
    other = _write(tmp_path / "README.txt", ["hello"])
    assert detect_file(other, layouts_for_state("nc")) is None


def test_wa_delimiter_is_sniffed_and_header_presence_detected(tmp_path):
    layouts = layouts_for_state("wa")
    spec = layouts[0].voters
    piped = _write(tmp_path / "20240601_VRDB_Extract.txt", ["|".join(spec.columns + ("Birthyear",))])
    found = detect_file(piped, layouts)
    assert found.delimiter == "|" and found.column_index["Birthyear"] == len(spec.columns)
    headerless = _write(tmp_path / "20240603_VotingHistoryExtract.txt", ["1|KI|KI|WA000001|11/05/2024"])
    found = detect_file(headerless, layouts)
    assert found.role == "history" and not found.has_header


def test_dates_reject_impossible_days_and_keep_real_ones():
    values = pa.array(["02/29/2020", "02/30/2020", "13/01/2020", "1/2/2019", None, "garbage", "01/01/2099"])
    parsed, bad, out_of_range = parse_dates(values, ["%m/%d/%Y"], latest=date(2026, 11, 1))
    assert parsed.to_pylist() == [date(2020, 2, 29), None, None, date(2019, 1, 2), None, None, None]
    assert (bad, out_of_range) == (3, 1)


def test_dates_try_each_format_in_turn():
    parsed, bad, _ = parse_dates(pa.array(["2020-05-06", "05062020"]), ["%Y-%m-%d", "%m%d%Y"], latest=date(2026, 1, 1))
    assert parsed.to_pylist() == [date(2020, 5, 6), date(2020, 5, 6)] and bad == 0


def test_zip_and_year_parsing():
    zips = pa.array(["27513", "275130001", "27513-0001", "ABCDE", "123", None])
    zip5, bad5, *_ = parse_zip(zips, "zip5")
    zip4, *_ = parse_zip(zips, "zip4")
    assert zip5.to_pylist() == ["27513", "27513", "27513", None, None, None] and bad5 == 2
    assert zip4.to_pylist() == [None, "0001", "0001", None, None, None]
    years, bad, out_of_range = parse_year(pa.array(["1980", "198O", "1700", None]), latest_year=2026)
    assert years.to_pylist() == [1980, None, None, None] and (bad, out_of_range) == (1, 1)


def test_code_tables_exact_contains_default_and_empty():
    layout = load_layouts()["nc_current"]
    methods, unknown = map_codes(pa.array(["ABSENTEE ONESTOP", "ELECTION DAY IN-PERSON", "early voting curbside",
                                           "ABSENTEE BY MAIL", "PROVISIONAL", "BY CARRIER PIGEON", None]),
                                 layout.codes["voting_method"])
    assert methods.to_pylist() == ["early", "in_person", "early", "absentee", "provisional", "other", "unknown"]
    assert unknown == 1
    party, _ = map_codes(pa.array(["DEM", "NLB", None]), layout.codes["party"])
    assert party.to_pylist() == ["DEM", "OTH", None]


def test_join_present_skips_missing_parts():
    joined = join_present([pa.array([None, "A", "B", None]), pa.array([None, None, "C", "D"])], " ")
    assert joined.to_pylist() == [None, "A", "B C", "D"]


def test_delimited_block_keeps_physical_line_numbers_and_rejects_bad_lines():
    block = b"a\tb\tc\nd\te\n\ng\th\ti\tj\nk\tl\tm\n"
    parsed = parse_delimited(block, 2, delimiter="\t", quote="", ncols=3, include={"x": 0, "z": 2})
    assert parsed.line_numbers.tolist() == [2, 6]
    assert parsed.columns["x"].to_pylist() == ["a", "k"]
    reasons = sorted((r.line_number, r.reason.split(":")[0], r.raw_line) for r in parsed.rejects)
    assert reasons == [(3, "wrong_field_count", "d\te"), (4, "blank_line", ""), (5, "wrong_field_count", "g\th\ti\tj")]
    assert parsed.lines == 5


def test_quoted_value_running_over_a_line_is_rejected_not_merged():
    block = b'"1","a","x"\n"2","b\n","y"\n"3","c","z"\n'
    parsed = parse_delimited(block, 1, delimiter=",", quote='"', ncols=3, include={"id": 0})
    assert parsed.columns["id"].to_pylist() == ["1", "3"]
    assert parsed.line_numbers.tolist() == [1, 4]
    assert {r.line_number for r in parsed.rejects} == {2, 3}
    assert parsed.lines == 4


def test_fixed_width_block_slices_fields_and_rejects_wrong_lengths():
    block = b"AAA12345\nBBB678\nCCC99999\n"
    parsed = parse_fixed_width(block, 1, widths=[("code", 0, 3), ("num", 3, 8)], line_length=(8, 8))
    assert parsed.columns["code"].to_pylist() == ["AAA", "CCC"]
    assert parsed.line_numbers.tolist() == [1, 3]
    assert parsed.rejects[0].line_number == 2 and parsed.rejects[0].reason.startswith("wrong_line_length")


def test_text_blocks_strip_nul_count_undecodable_and_keep_whole_lines(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"ab\x00c\r\nd\x85e\r\n" + b"f" * 10 + b"\n" + b"last")
    blocks = TextBlocks(path, "latin-1", chunk_rows=1)
    data = b"".join(blocks)
    assert data == "abc\nd\ufffde\nffffffffff\nlast\n".encode("utf-8")
    assert blocks.counters.nul_stripped == 1 and blocks.counters.undecodable_replaced == 1
    assert blocks.bytes_read == path.stat().st_size

    utf16 = tmp_path / "y.txt"
    utf16.write_bytes(b"\xff\xfe" + "a\tb\n".encode("utf-16-le") + b"\x00\xd8" + "\n".encode("utf-16-le"))
    blocks = TextBlocks(utf16, "latin-1", chunk_rows=10)
    assert b"".join(blocks) == "a\tb\n\ufffd\n".encode("utf-8")
    assert blocks.encoding == "utf-16-le" and blocks.counters.undecodable_replaced == 2


def test_large_arrays_parse_per_distinct_value_with_the_same_counts():
    values = ["02/29/2020", "02/30/2020", None, "01/01/2099", "bad", "12/31/1999"] * 2000
    small = [parse_dates(pa.array(values[i:i + 6]), ["%m/%d/%Y"], latest=date(2026, 1, 1)) for i in (0,)]
    big, bad, out_of_range = parse_dates(pa.array(values), ["%m/%d/%Y"], latest=date(2026, 1, 1))
    assert (bad, out_of_range) == (small[0][1] * 2000, small[0][2] * 2000) == (4000, 2000)
    assert big.to_pylist()[:6] == small[0][0].to_pylist()
    zips, bad_zips, *_ = parse_zip(pa.array(["27513", "ABCDE", None] * 3000), "zip5")
    assert bad_zips == 3000 and zips.null_count == 6000


def test_unknown_layout_error_never_shows_a_data_row(tmp_path):
    headerless = _write(tmp_path / "ncvoter_Statewide.txt", ["92\tWAKE\tBB000001\tSMITH\tANN\t27513"])
    with pytest.raises(LayoutError) as info:
        detect_file(headerless, layouts_for_state("nc"))
    assert "SMITH" not in str(info.value) and "looks like data" in str(info.value)
