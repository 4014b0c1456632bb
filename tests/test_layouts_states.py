"""The layouts added for issue 14, each only a TOML file: a synthetic drop generated from the layout
imports and reconciles, its code tables map every delivered code, its history lands in the long
history table, and clean rows carry the synthetic truth through the layout and back."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import luigi
import pandas as pd
import pyarrow.parquet as pq
import pytest

from voterpipe import schema
from voterpipe.formats.layouts import load_layouts, state_canonical
from voterpipe.synth import read_truth, truth_dir, write_drop
from voterpipe.tasks.imports import ImportSnapshot

SNAPSHOT = date(2026, 11, 1)
# (state, layout): the layouts this issue added.
NEW_LAYOUTS = [("nc", "nc_vr_snapshot"), ("tx", "tx_sos"), ("ga", "ga_pre2023"), ("ga", "ga_2023"), ("co", "co_ex003"), ("ok", "ok_virs"), ("nv", "nv_elgbvtr"), ("mn", "mn_sos"), ("va", "va_elections"), ("ca", "ca_pvrdr"), ("nj", "nj_vlist"), ("mt", "mt_sos"), ("nh", "nh_sos"), ("wv", "wv_sos"), ("me", "me_sos"), ("md", "md_sbe"), ("vt", "vt_sos"), ("ny", "ny_foil"), ("ut", "ut_lg"), ("pa", "pa_fve")]
FIELD_COUNT_DAMAGE = {"extra_fields", "missing_fields"}
CANONICAL_VALUES = {
    "status": set(schema.STATUS_VALUES),
    "gender": {"M", "F", "U"},
    "party": {"DEM", "REP", "UNA", "LIB", "GRE", "OTH"},
}
HISTORY_VALUES = {
    "election_type": set(schema.ELECTION_TYPES),
    "voting_method": set(schema.VOTING_METHODS),
    "ballot_status": {"counted", "not_counted"},
}


def _import(state: str, layout: str) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    task = ImportSnapshot(state=state, snapshot=SNAPSHOT)
    assert luigi.build([task], local_scheduler=True)
    manifest = task.output().manifest()
    assert manifest["layout"] == layout
    read = lambda name: pq.read_table(task.output().file(name)).to_pandas()  # noqa: E731
    return manifest, read("voters.parquet"), read("history.parquet"), read("rejects.parquet")


@pytest.mark.parametrize("state,layout", NEW_LAYOUTS)
def test_new_layout_synthetic_drop_imports_reconciles_and_maps_codes(data_root, state, layout):
    summary = write_drop(state, 1500, SNAPSHOT, seed=7, layout=layout, dirty_rate=0.02, root=data_root)
    assert summary["layout"] == layout
    manifest, voters, history, rejects = _import(state, layout)
    ledger = pd.read_parquet(truth_dir(state, SNAPSHOT, data_root) / "damage.parquet")

    # Every file reconciles; the rejected lines are exactly the planted bad lines.
    for entry in manifest["files"]:
        assert entry["rows_read"] == entry["rows_loaded"] + entry["rows_rejected"] + entry["rows_skipped"]
        if entry["role"] != "voters":
            assert entry["rows_rejected"] == 0, entry["name"]
            continue
        damage = ledger[ledger["file"] == entry["name"]]
        kinds = Counter(damage["kind"])
        rejected = rejects[rejects["source_file"] == entry["name"]]
        assert sorted(rejected["line_number"]) == sorted(damage[damage["kind"].isin(FIELD_COUNT_DAMAGE)]["line"])
        assert entry["values_nulled"].get("res_zip5", {}).get("bad_zip", 0) == kinds["bad_zip"]
        assert entry["values_nulled"].get("registered_on", {}).get("bad_date", 0) == kinds["bad_date"]

    state_canonical(state)  # the state's layouts agree on one canonical form
    # Code tables: every loaded value is canonical, and no delivered code fell to the table's default.
    spec = load_layouts()[layout]
    for name, allowed in CANONICAL_VALUES.items():
        if name in spec.voters.fields:
            assert set(voters[name].dropna()) <= allowed, name
            assert voters[name].notna().all(), name
    if "status" in spec.voters.fields:
        assert voters["status"].isin(["active", "inactive"]).mean() > 0.8

    # History: the canonical long table, one row per voter and election, for voters of the drop.
    if spec.history is None:  # NC's snapshots come without history
        assert history.empty and manifest["totals"]["history_loaded"] == summary["history_rows"] == 0
        return _check_truth(state, data_root, spec, voters, ledger)
    # "Did not vote" rows (the state's ballot_status codes) are skipped, never loaded nor rejected.
    skipped = sum(f["rows_skipped"] for f in manifest["files"] if f["role"] == "history")
    assert len(history) == manifest["totals"]["history_loaded"] > 0
    if spec.history.shape == "long":
        assert len(history) == summary["history_rows"] - skipped
    else:  # wide cells of the rejected voter lines are lost with them; "did not vote" cells are none
        assert 0.95 * summary["history_rows"] < len(history) <= summary["history_rows"]
    assert (skipped > 0) == bool(spec.synth.get("history", {}).get("did_not_vote"))
    for name, allowed in HISTORY_VALUES.items():
        assert set(history[name]) <= allowed, name
    assert history["election_date"].notna().all()
    if "election_type" in spec.history.fields or spec.history.shape in ("packed", "slots"):
        assert history["election_type"].nunique() >= 2
    if "voting_method" in spec.history.fields:
        assert (history["voting_method"] != "other").any()

    _check_truth(state, data_root, spec, voters, ledger)


def _check_truth(state, data_root, spec, voters: pd.DataFrame, ledger: pd.DataFrame) -> None:
    """Clean rows carry the truth through the layout and back."""
    truth = read_truth(state, SNAPSHOT, data_root)
    id_field = spec.voters.fields["voter_id"]
    if id_field.get("sep"):  # county + id: the truth keeps the bare id
        voters["voter_id"] = voters["voter_id"].str.split(id_field["sep"]).str[-1]
    assert set(voters["voter_id"]) <= set(truth["voter_id"])
    merged = voters.merge(truth, on="voter_id", suffixes=("", "_truth"))
    clean = merged[~merged["voter_id"].isin(set(ledger["voter_id"])) & (merged["addr_kind"] == "street")]
    assert len(clean) > 1000
    if "registered_on" in spec.voters.fields:  # a placeholder registration date is loaded as null
        dated = clean[~clean["reg_placeholder"]] if "reg_placeholder" in clean else clean
        assert (pd.to_datetime(dated["registered_on"]) == dated["registered_on_truth"]).all()
    if "birth_date" in spec.voters.fields:
        assert (pd.to_datetime(clean["birth_date"]) == clean["birth_date_truth"]).all()
    if {"birth_date", "birth_year"} & set(spec.voters.fields):
        assert (clean["birth_year"] == clean["birth_date_truth"].dt.year).all()
    assert (clean["res_zip5"] == clean["zip5"]).all()
    assert (clean["last_name"] == clean["last_name_truth"]).all()


def test_the_readme_state_table_lists_every_layout_with_its_state():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name, layout in load_layouts().items():
        assert f"| `{name}` | {layout.state.upper()} |" in readme, name
    assert {layout for _, layout in NEW_LAYOUTS} <= set(load_layouts())
