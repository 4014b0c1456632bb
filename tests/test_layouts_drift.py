"""Layout drift is loud: a delivered header that matches no known layout of its state fails the
import with a column diff against the closest layout (missing, unexpected and moved columns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voterpipe.formats.drift import header_diff
from voterpipe.formats.importer import plan_drop
from voterpipe.formats.layouts import LayoutError, layouts_for_state, load_layouts

LAYOUTS = load_layouts()


def _write(directory: Path, name: str, header: list[str], sep: str, rows: list[list[str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text("\n".join(sep.join(r) for r in [header] + rows) + "\n", encoding="latin-1")


def test_a_drifted_header_names_the_closest_layout_and_its_missing_unexpected_and_moved_columns(tmp_path):
    columns = list(LAYOUTS["ga_2023"].voters.columns)
    header = [c for c in columns if c not in ("Land Lot", "Combo Number")] + ["Voter Email"]
    header.remove("Gender")
    header.insert(2, "Gender")  # moved up, out of the layout's order
    _write(tmp_path, "Statewide_Voter_List_20261101.csv", header, ",", [])
    with pytest.raises(LayoutError) as caught:
        plan_drop(tmp_path, "ga")
    message = str(caught.value)
    assert "Statewide_Voter_List_20261101.csv matches no known layout" in message
    assert ("closest layout ga_2023: missing ['Combo Number', 'Land Lot'], unexpected ['Voter Email'], "
            "moved ['Gender']") in message


def test_the_closest_of_several_layouts_is_the_one_with_the_fewest_differences(tmp_path):
    """NC's two ncvoter layouts share file names: a current header with one renamed column is
    closest to nc_current, not to the 71-column nc_pre2022."""
    header = ["ncid_number" if c == "ncid" else c for c in LAYOUTS["nc_current"].voters.columns]
    _write(tmp_path, "ncvoter_Statewide.txt", header, "\t", [])
    with pytest.raises(LayoutError, match=r"closest layout nc_current: missing \['ncid'\], "
                                          r"unexpected \['ncid_number'\], moved \[\]"):
        plan_drop(tmp_path, "nc")


def test_aliases_and_wide_election_columns_are_no_drift():
    ohio = LAYOUTS["oh_swvf"]
    names = list(ohio.voters.columns) + ["GENERAL-11/05/2024", "PRIMARY-03/19/2024"]
    diff = header_diff("oh_swvf", ohio.voters, names, ohio.wide_history.wide["pattern"])
    assert (diff.missing, diff.unexpected, diff.moved) == ((), (), ())
    colorado = LAYOUTS["co_ex003"].voters
    names = [{"MAILING_ADDRESS_1": "MAIL_ADDR1"}.get(c, c) for c in colorado.columns]
    assert header_diff("co_ex003", colorado, names).distance == (0, 0)


def test_a_data_line_where_the_header_should_be_is_not_diffed_nor_shown(tmp_path):
    """A file whose first line looks like data gets no column diff: its values could be personal data."""
    row = ["BB123456", "92", "WAKE"] + ["x"] * (len(LAYOUTS["nc_current"].voters.columns) - 3)
    _write(tmp_path, "ncvoter_Statewide.txt", row, "\t", [])
    with pytest.raises(LayoutError) as caught:
        plan_drop(tmp_path, "nc")
    assert "closest layout" not in str(caught.value) and "BB123456" not in str(caught.value)


def test_every_new_state_has_its_layouts_and_a_matching_header_is_no_drift():
    for name in ("ga_2023", "co_ex003", "ok_virs", "mn_sos", "va_elections", "nj_vlist", "md_sbe"):
        spec = LAYOUTS[name].voters
        assert header_diff(name, spec, list(spec.columns)).distance == (0, 0)
    assert [l.name for l in layouts_for_state("ga")] == ["ga_2023", "ga_pre2023"]
