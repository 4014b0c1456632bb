"""The synthetic drops: real layouts, determinism, planted damage, households and snapshot churn."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from voterpipe import storage
from voterpipe.synth import counties_for, networks_for, read_truth, write_drop
from voterpipe.formats.layouts import load_layouts
from voterpipe.synth.geography import LEADING_ZERO_ZIP_PREFIXES
from voterpipe.synth.layouts import artefacts
from voterpipe.synth.layouts.writer import written_columns
from voterpipe.synth.states import PROFILES

SNAPSHOT = "2026-11-01"
LAYOUTS = load_layouts()


def _columns(layout: str, role: str = "voters", snapshot: str = SNAPSHOT) -> list[str]:
    """The columns the synthetic writer puts in a file of this layout (from its TOML)."""
    spec = LAYOUTS[layout].voters if role == "voters" else LAYOUTS[layout].history
    return written_columns(spec, LAYOUTS[layout].synth.get(role, {}), pd.Timestamp(snapshot).date())


def _drop(root: Path, state: str, layout: str | None = None, voters: int = 1200, seed: int = 1,
          dirty_rate: float = 0.02, **kwargs) -> tuple[dict, Path]:
    summary = write_drop(state, voters, kwargs.pop("snapshot", SNAPSHOT), seed, layout=layout,
                         dirty_rate=dirty_rate, root=root, **kwargs)
    return summary, Path(summary["directory"])


def _latin1_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("latin-1").split("\n")[:-1]


def _split_counts(lines: list[str], sep: str) -> dict[int, int]:
    counts: dict[int, int] = {}
    for line in lines:
        n = len(line.split(sep))
        counts[n] = counts.get(n, 0) + 1
    return counts


@pytest.fixture(scope="module")
def nc_drop(tmp_path_factory):
    root = tmp_path_factory.mktemp("nc")
    summary, directory = _drop(root, "nc", voters=2000)
    return root, summary, directory


def test_nc_current_layout_and_planted_damage(nc_drop):
    root, summary, directory = nc_drop
    assert storage.is_published(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["_READY", "manifest.json", "ncvhis_Statewide.txt",
                                                           "ncvoter_Statewide.txt"]
    lines = _latin1_lines(directory / "ncvoter_Statewide.txt")
    assert lines[0].split("\t") == _columns("nc_current") == list(LAYOUTS["nc_current"].voters.columns)
    assert len(_columns("nc_current")) == 67
    assert len(lines) - 1 == summary["voters"] == 2000
    damaged = summary["damaged"]
    assert all(damaged[k] > 0 for k in damaged) and summary["damaged_total"] == 40
    counts = _split_counts(lines[1:], "\t")
    assert counts == {67: 2000 - damaged["extra_fields"] - damaged["missing_fields"],
                      68: damaged["extra_fields"], 66: damaged["missing_fields"]}
    rows = [line.split("\t") for line in lines[1:] if len(line.split("\t")) == 67]
    assert sum("\x00" in line for line in lines) == damaged["nul_bytes"]
    assert sum(r[25] == "02/30/2019" for r in rows) == damaged["bad_date"]
    assert sum(r[15] in ("ABCDE", "123") for r in rows) == damaged["bad_zip"]
    # The ledger in the truth cache names the same lines.
    ledger = pd.read_parquet(Path(summary["truth"]) / "damage.parquet")
    assert len(ledger) == 40
    for item in ledger.itertuples():
        line = lines[item.line - 1]
        assert item.voter_id in line.replace("\x00", "")
    # Quirks of the real file.
    text = "\n".join(lines)
    assert re.search(r"\t\d+  [A-Z0-9 ]+   #\w+\t", text), "unit after three spaces and '#'"
    assert "\tREMOVED\t" in text and "\t##/##/####\t" in text
    assert any(ch in text for ch in "ÉÑÍÁÓÚ")
    assert sum(len(r[15]) == 9 and r[15].isdigit() for r in rows) > 100  # ZIP+4 without a dash
    assert {r[8] for r in rows} >= {"A", "I", "R"}
    assert {r[28] for r in rows} >= {"DEM", "REP", "UNA"}
    confidential = [r for r in rows if r[24] == "Y"]
    assert confidential and all(r[12] == "" and r[15] == "" for r in confidential)


def test_nc_history_file(nc_drop):
    _, summary, directory = nc_drop
    lines = _latin1_lines(directory / "ncvhis_Statewide.txt")
    assert lines[0].split("\t") == _columns("nc_current", "history")
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == summary["history_rows"] and {len(r) for r in rows} == {15}
    elections = {r[4] for r in rows}
    assert {"11/05/2024 GENERAL", "11/03/2020 GENERAL", "09/10/2019 SPECIAL", "03/05/2024 PRIMARY"} <= elections
    assert len(elections) >= 6
    methods = {r[5] for r in rows}
    assert {"ABSENTEE ONESTOP", "EARLY VOTING IN-PERSON", "ABSENTEE BY MAIL"} <= methods
    # Older voters turn out more; nobody votes before registering.
    truth = read_truth("nc", SNAPSHOT, Path(summary["truth"]).parents[3]).set_index("voter_id")
    voted_2024 = {r[10] for r in rows if r[4] == "11/05/2024 GENERAL"}
    age = (pd.Timestamp("2024-11-05") - truth["birth_date"]).dt.days / 365.25
    eligible = truth[(truth["registered_on"] < pd.Timestamp("2024-11-05")) & (age >= 18)]
    turnout_old = eligible[age[eligible.index] >= 65].index.isin(list(voted_2024)).mean()
    turnout_young = eligible[age[eligible.index] < 30].index.isin(list(voted_2024)).mean()
    assert turnout_old > turnout_young + 0.1
    registered = truth["registered_on"]
    for r in rows[:2000]:
        assert pd.Timestamp(r[3]) > registered[r[10]]


def test_households_share_the_network_address(nc_drop):
    root, summary, directory = nc_drop
    truth = read_truth("nc", SNAPSHOT, root)
    homes = truth.groupby("household_id")["dwelling_id"].nunique()
    assert (homes == 1).all()
    sizes = truth.groupby("household_id").size()
    assert set(sizes[sizes <= 6].unique()) >= {1, 2, 3, 4}
    families = truth[truth["household_kind"] == "family"]
    shared = families.groupby("household_id")["last_name"].agg(lambda s: s.value_counts().iloc[0] / len(s))
    assert shared.mean() > 0.8
    gq = truth[truth["household_kind"] == "group_quarters"]
    assert gq.groupby("dwelling_id").size().min() >= 12
    assert gq.groupby("dwelling_id")["last_name"].nunique().min() >= 5
    assert (truth["unit"] != "").mean() > 0.1  # apartments use the buildings' units

    # What the file says is the dwelling's network address, and members of a household agree.
    lines = _latin1_lines(directory / "ncvoter_Statewide.txt")[1:]
    rows = pd.DataFrame([line.split("\t") for line in lines if len(line.split("\t")) == 67],
                        columns=_columns("nc_current"))
    merged = rows.merge(truth, left_on="ncid", right_on="voter_id")
    street = merged[(merged["addr_kind"] == "street") & ~merged["zip_code"].isin(["ABCDE", "123"])]
    expected = (street["house_number"] + "  " + (street["pre_dir"] + " " + street["street_name"] + " "
                + street["street_type"] + " " + street["post_dir"]).str.split().str.join(" "))
    expected = np.where(street["unit"] != "", expected + "   #" + street["unit"], expected)
    assert (street["res_street_address"].str.rstrip() == expected).all()
    assert (street["zip_code"].str[:5] == street["zip5"]).all()
    per_household = street.groupby("household_id")["res_street_address"].nunique()
    assert (per_household == 1).all()

    # Every address exists in the county networks the TIGER files are made from.
    networks = networks_for("nc", 1, _buildings(root))
    buildings = pd.concat([n.buildings for n in networks])
    known = set(zip(buildings["house_number"], buildings["street_name"], buildings["zip5"]))
    assert all(key in known for key in zip(street["house_number"], street["street_name"], street["zip5"]))


def _buildings(root: Path) -> int:
    return storage.read_json(root / "cache" / "synth" / "nc" / SNAPSHOT / "meta.json")["buildings_per_county"]


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    def digests(root):
        _, directory = _drop(root, "nc", voters=600)
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}

    first, second = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert first == second
    _, other = _drop(tmp_path / "c", "nc", voters=600, seed=2)
    assert hashlib.sha256((other / "ncvoter_Statewide.txt").read_bytes()).hexdigest() != first["ncvoter_Statewide.txt"]


def test_nc_pre2022_is_quoted_utf16(tmp_path):
    summary, directory = _drop(tmp_path, "nc", layout="nc_pre2022", voters=800)
    for name, columns in (("ncvoter_Statewide.txt", _columns("nc_pre2022")),
                          ("ncvhis_Statewide.txt", _columns("nc_pre2022", "history"))):
        raw = (directory / name).read_bytes()
        assert raw[:2] == b"\xff\xfe"
        lines = raw[2:].decode("utf-16-le").split("\r\n")[:-1]
        assert lines[0] == "\t".join(f'"{c}"' for c in columns)
        assert all(line.startswith('"') and line.endswith('"') for line in lines if "EXTRA" not in line)
    lines = (directory / "ncvoter_Statewide.txt").read_bytes()[2:].decode("utf-16-le").split("\r\n")[1:-1]
    assert len(_columns("nc_pre2022")) == 71
    assert _split_counts(lines, "\t")[71] == summary["voters"] - summary["damaged"]["extra_fields"] \
        - summary["damaged"]["missing_fields"]


def test_ohio_split_files_and_wide_history(tmp_path):
    summary, directory = _drop(tmp_path, "oh", voters=1500)
    assert sorted(p.name for p in directory.glob("SWVF_*")) == ["SWVF_1_22.txt", "SWVF_23_44.txt"]
    total, cells = 0, 0
    for path in directory.glob("SWVF_*"):
        rows = list(csv.reader(io.StringIO(path.read_bytes().decode("latin-1"), newline="")))
        header = rows[0]
        assert header[:46] == _columns("oh_swvf")
        history = header[46:]
        assert all(re.fullmatch(r"(PRIMARY|GENERAL|SPECIAL)-\d\d/\d\d/\d{4}", h) for h in history)
        assert len(history) >= 6
        good = [r for r in rows[1:] if len(r) == len(header)]
        total += len(rows) - 1
        cells += sum(v != "" for r in good for v in r[46:])
        assert {v for r in good for v in r[46:]} <= {"", "X", "D", "R", "L", "G", "C", "N", "S", "E"}
        assert all(re.fullmatch(r"OH\d{10}", r[0]) for r in good)
        county_numbers = {int(float(r[1])) for r in good}  # a planted artefact writes 18 as 18.0
        low, high = map(int, re.findall(r"\d+", path.name))
        assert all(low <= c <= high for c in county_numbers)
        assert "1900-01-01" in {r[8] for r in rows[1:]} or path.name == "SWVF_23_44.txt"
    assert total == summary["voters"] == 1500
    assert cells <= summary["history_rows"]


def test_florida_per_county_files_without_header(tmp_path):
    summary, directory = _drop(tmp_path, "fl", voters=1500)
    codes = [c.county_code for c in counties_for("fl")]
    expected = sorted([f"{c}_20261101.txt" for c in codes] + [f"{c}_H_20261101.txt" for c in codes])
    assert sorted(p.name for p in directory.glob("*.txt")) == expected
    voters = history = extra = missing = 0
    for code in codes:
        lines = _latin1_lines(directory / f"{code}_20261101.txt")
        counts = _split_counts(lines, "\t")
        assert set(counts) <= {37, 38, 39}
        voters += len(lines)
        extra += counts.get(39, 0)
        missing += counts.get(37, 0)
        rows = [line.split("\t") for line in lines if len(line.split("\t")) == 38]
        assert {r[0] for r in rows} == {code}
        assert {r[28] for r in rows} <= {"ACT", "INA", "PRE"}
        assert all(re.fullmatch(r"\d\d/\d\d/\d{4}|", r[21]) for r in rows)
        hist = [line.split("\t") for line in _latin1_lines(directory / f"{code}_H_20261101.txt")]
        assert {len(h) for h in hist} == {5}
        assert {h[3] for h in hist} <= {"PPP", "PRI", "RUN", "GEN", "OTH"}
        assert {h[4] for h in hist} <= set("ABEFNPYZ")
        history += len(hist)
    assert voters == summary["voters"] and history == summary["history_rows"]
    assert extra == summary["damaged"]["extra_fields"] and missing == summary["damaged"]["missing_fields"]


def test_michigan_csv_and_fixed_width(tmp_path):
    summary, directory = _drop(tmp_path / "csv", "mi", layout="mi_csv", voters=1200)
    rows = list(csv.reader(io.StringIO((directory / "EntireStateVoters.csv").read_bytes().decode("latin-1"),
                                       newline="")))
    assert rows[0] == _columns("mi_csv")
    assert "IS_PERM_AV_BALLOT_VOTER" in rows[0] and "STATUS_REASON" in rows[0]
    older = _columns("mi_csv", snapshot="2022-06-01")
    assert "IS_PERMANENT_ABSENTEE_VOTER" in older and "CANCELLATION_REASON" in older
    assert "IS_PERM_AV_APP_VOTER" not in older
    width = len(rows[0])
    assert sum(len(r) == width for r in rows[1:]) == 1200 - summary["damaged"]["extra_fields"] \
        - summary["damaged"]["missing_fields"]
    assert any(", MI " in r[19] for r in rows[1:] if len(r) == width)  # quoted comma in a mailing line
    hist = list(csv.reader(io.StringIO((directory / "EntireStateVoterHistory.csv").read_text("latin-1"))))
    assert hist[0] == _columns("mi_csv", "history") and len(hist) - 1 == summary["history_rows"]

    summary, directory = _drop(tmp_path / "fixed", "mi", layout="mi_fixed", voters=1200)
    lengths = [len(line) for line in _latin1_lines(directory / "entire_state_v.lst")]
    assert LAYOUTS["mi_fixed"].voters.widths[-1][2] == 520
    assert lengths.count(520) == 1200 - summary["damaged"]["extra_fields"] - summary["damaged"]["missing_fields"]
    line = next(line for line in _latin1_lines(directory / "entire_state_v.lst") if len(line) == 520)
    assert re.fullmatch(r"\d{13}", line[448:461]) and re.fullmatch(r"\d{8}", line[83:91])
    codes = {line[:13]: line for line in _latin1_lines(directory / "electionscd.lst")}
    history = _latin1_lines(directory / "entire_state_h.lst")
    assert {len(h) for h in history} == {39} and {h[25:38] for h in history} <= set(codes)


@pytest.mark.parametrize("seed, delimiter", [(1, "|"), (2, "\t")])
def test_washington_delimiter_follows_the_seed(tmp_path, seed, delimiter):
    summary, directory = _drop(tmp_path, "wa", voters=800, seed=seed)
    lines = _latin1_lines(directory / "20261101_VRDB_Extract.txt")
    header = lines[0].split(delimiter)
    assert header == _columns("wa_vrdb") and "Birthyear" in header
    assert "Birthdate" in _columns("wa_vrdb", snapshot="2023-01-01")
    assert _split_counts(lines[1:], delimiter)[33] == 800 - summary["damaged"]["extra_fields"] \
        - summary["damaged"]["missing_fields"]
    history = _latin1_lines(directory / "20261101_VotingHistoryExtract.txt")
    assert history[0].split(delimiter) == _columns("wa_vrdb", "history")
    at = header.index("StatusCode")
    statuses = {r.split(delimiter)[at] for r in lines[1:] if len(r.split(delimiter)) == 33}
    assert len(statuses) >= 4


def test_next_snapshot_churn_keeps_ids(tmp_path):
    first, _ = _drop(tmp_path, "nc", voters=3000, dirty_rate=0.0)
    second, directory = _drop(tmp_path, "nc", voters=3000, dirty_rate=0.0, snapshot="2026-12-01",
                              from_snapshot=SNAPSHOT)
    before = read_truth("nc", SNAPSHOT, tmp_path).set_index("voter_id")
    after = read_truth("nc", "2026-12-01", tmp_path).set_index("voter_id")
    churn = second["churn"]
    assert 0.02 <= churn["movers"] / 3000 <= 0.04
    assert 0.015 <= churn["new_registrants"] / 3000 <= 0.025
    assert 0.005 <= churn["removals"] / 3000 <= 0.015
    assert churn["renames"] > 0 and churn["party_changes"] > 0
    assert set(before.index) <= set(after.index)
    new = after.index.difference(before.index)
    assert len(new) == churn["new_registrants"] and (after.loc[new, "registered_on"] > pd.Timestamp(SNAPSHOT)).all()
    common = before.index
    moved = after.loc[common, "dwelling_id"] != before.loc[common, "dwelling_id"]
    assert moved.sum() == churn["movers"]
    assert (after.loc[common, "birth_date"] == before.loc[common, "birth_date"]).all()
    removed = (after.loc[common, "status_raw"] == "R") & (before.loc[common, "status_raw"] != "R")
    assert removed.sum() == churn["removals"]
    # One more election, and the past looks the same for everyone in both files.
    assert len(second["elections"]) == len(first["elections"]) + 1
    old = _latin1_lines(Path(first["directory"]) / "ncvhis_Statewide.txt")[1:]
    new_lines = _latin1_lines(directory / "ncvhis_Statewide.txt")[1:]
    votes = {(r.split("\t")[10], r.split("\t")[3]) for r in old}
    again = {(r.split("\t")[10], r.split("\t")[3]) for r in new_lines}
    assert votes <= again
    assert {d for _, d in again - votes} == {second["elections"][-1]["date"][5:7] + "/"
                                             + second["elections"][-1]["date"][8:] + "/2026"}


def test_from_snapshot_needs_the_earlier_truth(tmp_path):
    with pytest.raises(FileNotFoundError, match="write that snapshot first"):
        write_drop("nc", 100, "2026-12-01", 1, from_snapshot=SNAPSHOT, root=tmp_path)
    with pytest.raises(ValueError, match="not a NC layout"):
        write_drop("nc", 100, SNAPSHOT, 1, layout="oh_swvf", root=tmp_path)


def test_counties_and_networks_are_distinct_and_reproducible():
    seen_tlids, seen_origins, seen_zips = set(), set(), set()
    for state, profile in PROFILES.items():
        specs = counties_for(state)
        assert 2 <= len(specs) <= 3 and {s.state_fips for s in specs} == {profile.fips}
        for spec in specs:
            assert spec.origin not in seen_origins and spec.zip_base not in seen_zips
            seen_origins.add(spec.origin)
            seen_zips.add(spec.zip_base)
        networks = networks_for(state, 3, 60)
        again = networks_for(state, 3, 60)
        for a, b in zip(networks, again):
            pd.testing.assert_frame_equal(a.buildings, b.buildings)
            tlids = set(a.edges["TLID"])
            assert not tlids & seen_tlids
            seen_tlids |= tlids
    assert [c.county_code for c in counties_for("fl")] == ["ALA", "LEO", "DAD"]


def test_cli_synth_writes_a_drop(data_root, capsys):
    from voterpipe.cli import main

    assert main(["synth", "--state", "wa", "--voters", "300", "--snapshot", SNAPSHOT, "--seed", "1"]) == 0
    assert storage.is_published(data_root / "01_raw" / "wa" / SNAPSHOT)
    assert "'voters': 300" in capsys.readouterr().out


def test_unknown_synthetic_source_names_the_layout_and_column(tmp_path):
    (tmp_path / "xx_min.toml").write_text(
        'name = "xx_min"\nstate = "xx"\n[voters]\npatterns = ["XX.txt"]\ncolumns = ["id", "note"]\n'
        '[voters.fields]\nvoter_id = "id"\n[synth]\npeople = "oh"\n'
        '[synth.voters.columns]\nnote = "horoscope"\n')
    with pytest.raises(ValueError, match=r"xx_min.toml \[voters\] note: unknown synthetic source 'horoscope'"):
        write_drop("xx", 200, SNAPSHOT, 1, root=tmp_path / "data", formats_dir=tmp_path)
    toml = (tmp_path / "xx_min.toml").read_text()
    (tmp_path / "xx_min.toml").write_text(toml.replace('people = "oh"', ""))
    with pytest.raises(ValueError, match=r"xx_min.toml: no synthetic people for state 'xx'; set \[synth\] people"):
        write_drop("xx", 200, SNAPSHOT, 1, root=tmp_path / "data", formats_dir=tmp_path)
    (tmp_path / "xx_min.toml").write_text(toml)
    (tmp_path / "xx_min.toml").write_text((tmp_path / "xx_min.toml").read_text().replace("horoscope", "last_name"))
    summary = write_drop("xx", 200, SNAPSHOT, 1, root=tmp_path / "data", formats_dir=tmp_path, dirty_rate=0.05)
    lines = _latin1_lines(Path(summary["directory"]) / "XX.txt")
    assert lines[0] == "id\tnote" and len(lines) == 201
    # Only shape damage can be planted: the layout maps no date, ZIP or name column.
    assert {k for k, v in summary["damaged"].items() if v} == {"extra_fields", "missing_fields"}


def test_next_snapshot_churn_rate_scales_every_kind(tmp_path):
    _drop(tmp_path, "nc", voters=5000, dirty_rate=0.0)
    second, _ = _drop(tmp_path, "nc", voters=5000, dirty_rate=0.0, snapshot="2026-12-01",
                      from_snapshot=SNAPSHOT, churn_rate=0.02)
    churn = second["churn"]
    changed = sum(churn[k] for k in ("movers", "new_registrants", "removals", "renames", "party_changes"))
    assert 0.015 <= changed / 5000 <= 0.025
    assert 0.005 <= churn["movers"] / 5000 <= 0.012  # 3 of the 7.5 default points, scaled to 2
    with pytest.raises(ValueError, match="churn_rate"):
        _drop(tmp_path, "nc", voters=5000, snapshot="2026-12-08", from_snapshot=SNAPSHOT, churn_rate=0.9)


@pytest.mark.parametrize("layout", ["nj_vlist", "vt_sos", "nh_sos", "me_sos"])
def test_states_whose_zips_begin_with_0_get_0_leading_zips(tmp_path, layout):
    """Their stand-in people ([synth] people) live at ZIPs of the state's own USPS prefix, in the
    files and in the truth alike; the other states keep their profile's ZIPs."""
    spec = LAYOUTS[layout]
    assert spec.canonical.zip_leading_zero
    prefix = LEADING_ZERO_ZIP_PREFIXES[spec.state]
    people = spec.synth["people"]
    zips = [str(c.zip_base).zfill(5) for c in counties_for(people, spec.state)]
    assert all(z.startswith(prefix) for z in zips) and len(set(zips)) == len(zips)
    assert [c.zip_base for c in counties_for(people)] == [c.zip_base for c in PROFILES[people].counties]
    summary, _ = _drop(tmp_path, spec.state, layout, voters=600, dirty_rate=0.0)
    truth = read_truth(spec.state, SNAPSHOT, tmp_path)
    assert truth["zip5"].str.startswith(prefix).all()
    assert not any(f.get("artefacts") for f in summary["files"])  # a clean drop carries none


def test_zip_artefacts_lose_one_leading_zero_only_where_the_state_has_them():
    values = pa.array(["02134", "021341234", "00601", "27517", ""])
    chosen = np.ones(len(values), bool)
    lost, hit = artefacts._apply("lost_zero_zip", values, chosen, True)
    assert lost.to_pylist() == ["2134", "21341234", "00601", "27517", ""]
    assert hit.tolist() == [True, True, False, False, False]
    floats, _ = artefacts._apply("float_zip", values, chosen, True)
    assert floats.to_pylist() == ["2134.0", "21341234.0", "00601", "27517.0", ""]
    floats, _ = artefacts._apply("float_zip", values, chosen, False)  # a 0 there is no lost zero
    assert floats.to_pylist() == ["02134", "021341234", "00601", "27517.0", ""]


def test_0_leading_zip_states_get_zip_artefacts_at_the_dirty_rate():
    assert artefacts.artefact_rates(LAYOUTS["nj_vlist"], 0.02) == {"lost_zero_zip": 0.02, "float_zip": 0.02}
    assert artefacts.artefact_rates(LAYOUTS["nj_vlist"], 0.0) == {"lost_zero_zip": 0.0, "float_zip": 0.0}
    # A declared table wins; a state whose ZIPs do not begin with 0 gets none by default.
    assert artefacts.artefact_rates(LAYOUTS["nc_current"], 0.02) == LAYOUTS["nc_current"].synth["artefacts"]
    assert "artefacts" not in LAYOUTS["tx_sos"].synth and not LAYOUTS["tx_sos"].canonical.zip_leading_zero
    assert artefacts.artefact_rates(LAYOUTS["tx_sos"], 0.02) == {}
