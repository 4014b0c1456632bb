"""The wide-history option not_voted_values: a cell value that says "did not vote" (Vermont's F)
gives no history row, like a blank cell; the synthetic writer writes it for non-voters."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq

from voterpipe.formats.importer import import_drop
from voterpipe.formats.layouts import load_layouts
from voterpipe.synth import write_drop

LAYOUT = """
name = "zx_wide"
state = "zx"
[voters]
patterns = ["ZX_*.txt"]
delimiter = "|"
header = true
columns = ["ID", "LAST", "ZIP"]
[voters.fields]
voter_id = "ID"
last_name = "LAST"
res_zip5 = { column = "ZIP", zip = "zip5" }
[history]
shape = "wide"
column_pattern = '^(?P<type>[A-Z]+) (?P<date>\\d{2}/\\d{2}/\\d{4})$'
no_party_values = ["T"]
%s
[synth]
people = "wa"
[synth.voters]
file = "ZX_{stamp}.txt"
[synth.history]
column_name = "{label} {on:%%m/%%d/%%Y}"
"""
LINES = ["ID|LAST|ZIP|GENERAL 11/08/2022|GENERAL 11/05/2024",
         "1|PUBLIC|27601|T|F", "2|SMITH|27601|F|F", "3|JONES|27601||t"]


def _import(tmp_path, option: str) -> list[tuple[str, str]]:
    formats = tmp_path / f"formats{len(option)}"
    formats.mkdir()
    (formats / "zx_wide.toml").write_text(LAYOUT % option)
    raw = tmp_path / f"raw{len(option)}"
    raw.mkdir()
    (raw / "ZX_20261101.txt").write_text("\n".join(LINES) + "\n")
    outputs = {name: tmp_path / f"{name}{len(option)}.parquet" for name in ("voters", "history", "rejects")}
    import_drop(raw, outputs, "zx", date(2026, 11, 1), formats_dir=formats)
    rows = pq.read_table(outputs["history"]).to_pylist()
    return sorted((r["voter_id"], r["election_date"].isoformat()) for r in rows)


def test_not_voted_cells_give_no_history_row(tmp_path):
    assert _import(tmp_path, 'not_voted_values = ["F"]') == [("1", "2022-11-08"), ("3", "2024-11-05")]
    # Without the option every non-blank cell is a vote, F included.
    assert len(_import(tmp_path, "")) == 5


def test_the_option_is_read_upper_case_and_the_writer_writes_it_for_non_voters(tmp_path, data_root):
    formats = tmp_path / "formats"
    formats.mkdir()
    (formats / "zx_wide.toml").write_text(LAYOUT % 'not_voted_values = ["f"]')
    assert load_layouts(formats)["zx_wide"].history.wide["not_voted_values"] == ("F",)
    summary = write_drop("zx", 300, date(2026, 11, 1), seed=3, dirty_rate=0.0, root=data_root, formats_dir=formats)
    text = (data_root / "01_raw" / "zx" / "2026-11-01" / "ZX_20261101.txt").read_text("latin-1").splitlines()
    cells = [cell for line in text[1:] for cell in line.split("|")[3:]]
    assert set(cells) == {"T", "F"} and cells.count("T") == summary["history_rows"] > 0
