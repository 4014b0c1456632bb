"""Backfill: EnrichAll enriches every complete drop of a state in date order; EnrichStates runs
several states in one `luigi` run with --workers 2, the DuckDB file written by one task at a time
([resources] warehouse_duckdb = 1)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

from voterpipe import storage, synth  # noqa: E402
from voterpipe.geocode.tiger import import_tiger_dir  # noqa: E402

pytestmark = pytest.mark.slow

NC_DROPS = [date(2026, 11, 1), date(2026, 11, 8)]
OH_DROP = date(2026, 11, 1)


def _luigi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ops.BIN / "luigi"), "--module", "voterpipe.tasks", *args, "--local-scheduler"],
                          cwd=ops.REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_enrich_states_runs_every_drop_of_each_state_in_date_order_with_two_workers(data_root):
    ops.write_nc_drops(NC_DROPS, voters=300)
    synth.write_drop(state="oh", voters=300, snapshot=OH_DROP, seed=4)
    import_tiger_dir(storage.cache_dir("synth") / "oh" / "tiger")

    run = _luigi("EnrichStates", "--states", "nc,oh", "--workers", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "EnrichAll(state=nc)" in run.stderr and "EnrichAll(state=oh)" in run.stderr

    from voterpipe.tasks.publish import configured_warehouse

    published: dict[tuple, object] = {}
    for row in configured_warehouse().publications():
        key = (row["state"], row["snapshot"])
        published[key] = min(published.get(key, row["published_at"]), row["published_at"])
    assert set(published) == {("nc", NC_DROPS[0]), ("nc", NC_DROPS[1]), ("oh", OH_DROP)}
    assert published[("nc", NC_DROPS[0])] < published[("nc", NC_DROPS[1])]  # date order
    report = ops.status_json("oh")
    assert set(ops.cells(report, OH_DROP, "oh").values()) == {"complete", "done"}
    for day in NC_DROPS:
        assert set(ops.cells(ops.status_json(), day).values()) == {"complete", "done"}

    # everything done: a second backfill has nothing to do
    again = _luigi("EnrichAll", "--state", "nc")
    assert again.returncode == 0 and "Did not run any tasks" in again.stderr
