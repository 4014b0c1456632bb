"""End to end against H1's synthetic drops: every layout imports, and rejects match the damage ledger."""

from __future__ import annotations

from collections import Counter
from datetime import date

import luigi
import pandas as pd
import pyarrow.parquet as pq
import pytest

from voterpipe.synth import read_truth, truth_dir, write_drop
from voterpipe.tasks.imports import ImportSnapshot

SNAPSHOT = date(2026, 11, 1)
LAYOUTS = [("nc", "nc_current"), ("nc", "nc_pre2022"), ("oh", "oh_swvf"), ("fl", "fl_extract"),
           ("mi", "mi_csv"), ("mi", "mi_fixed"), ("wa", "wa_vrdb")]
FIELD_COUNT_DAMAGE = {"extra_fields", "missing_fields"}


@pytest.mark.parametrize("state,layout", LAYOUTS)
def test_synthetic_drop_imports_and_rejects_match_the_damage_ledger(data_root, state, layout):
    write_drop(state, 1500, SNAPSHOT, seed=7, layout=layout, dirty_rate=0.02, root=data_root)
    task = ImportSnapshot(state=state, snapshot=SNAPSHOT)
    assert luigi.build([task], local_scheduler=True)
    manifest = task.output().manifest()
    assert manifest["layout"] == layout
    ledger = pd.read_parquet(truth_dir(state, SNAPSHOT, data_root) / "damage.parquet")
    rejects = pq.read_table(task.output().file("rejects.parquet")).to_pandas()
    voters = pq.read_table(task.output().file("voters.parquet")).to_pandas()

    for entry in manifest["files"]:
        assert entry["rows_read"] == entry["rows_loaded"] + entry["rows_rejected"]
        if entry["role"] != "voters":
            continue
        damage = ledger[ledger["file"] == entry["name"]]
        kinds = Counter(damage["kind"])
        shape_damage = damage[damage["kind"].isin(FIELD_COUNT_DAMAGE)]
        rejected = rejects[rejects["source_file"] == entry["name"]]
        assert sorted(rejected["line_number"]) == sorted(shape_damage["line"]), entry["name"]
        assert entry["nul_bytes_stripped"] == kinds["nul_bytes"]
        nulled = entry["values_nulled"]
        assert nulled.get("res_zip5", {}).get("bad_zip", 0) == kinds["bad_zip"]
        assert nulled.get("registered_on", {}).get("bad_date", 0) == kinds["bad_date"]
        assert "bad_year" not in nulled.get("birth_year", {})

    truth = read_truth(state, SNAPSHOT, data_root)
    damaged_ids = set(ledger[ledger["kind"].isin(FIELD_COUNT_DAMAGE)]["voter_id"])
    # FL's canonical id is county code + Voter ID; the truth keeps the bare Voter ID.
    loaded = set(voters["voter_id"].str.slice(3) if state == "fl" else voters["voter_id"])
    assert loaded <= set(truth["voter_id"])
    assert not loaded & damaged_ids
    assert len(loaded) == len(truth) - len(damaged_ids & set(truth["voter_id"]))
    assert len(loaded) == len(voters) == manifest["totals"]["voters_loaded"]
    assert manifest["totals"]["history_loaded"] > 0
    assert set(voters["status"].unique()) <= {"active", "inactive", "removed", "other"}
    assert voters["res_zip5"].notna().mean() > 0.9
    assert len(truth) >= len(voters)
