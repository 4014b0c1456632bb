"""A real luigid: the stages show up in the scheduler with their progress and status messages, and
two worker processes running the same pipeline at once run each task exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import luigi
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

from voterpipe import synth  # noqa: E402
from voterpipe.tasks import ImportSnapshot  # noqa: E402

SNAPSHOT = date(2026, 11, 1)
STAGE_TASKS = ("ImportSnapshot", "NormaliseAddresses", "GeocodeAddresses", "BuildHouseholds", "AnalyseCohorts",
               "BuildVoterFile", "ReportSnapshot", "PublishSnapshot")


@pytest.fixture
def luigid(tmp_path):
    proc, port = ops.start_luigid(tmp_path)
    yield port
    ops.stop(proc)


def _api(port: int, method: str, **data) -> dict:
    return ops.luigid_api(port, method, **data)


def test_import_reports_progress_to_luigid(data_root, luigid):
    synth.write_drop(state="nc", voters=800, snapshot=SNAPSHOT, seed=5)
    ok = luigi.build([ImportSnapshot(state="nc", snapshot=SNAPSHOT)], scheduler_host="127.0.0.1",
                     scheduler_port=luigid, workers=1, log_level="WARNING")
    assert ok
    done = _api(luigid, "task_list", status="DONE", upstream_status="", search="ImportSnapshot")
    (task_id, task), = done.items()
    assert task["name"] == "ImportSnapshot"
    assert task["params"] == {"state": "nc", "snapshot": SNAPSHOT.isoformat()}
    assert task["progress_percentage"] == 100
    message = _api(luigid, "get_task_status_message", task_id=task_id)["statusMessage"]
    assert message.startswith("imported ") and "voters" in message and "history rows" in message

    # A second cron run with the output present does no work: the scheduler sees it complete.
    again = luigi.build([ImportSnapshot(state="nc", snapshot=SNAPSHOT)], scheduler_host="127.0.0.1",
                        scheduler_port=luigid, workers=1, log_level="WARNING", detailed_summary=True)
    assert again.status.name == "SUCCESS"
    assert "complete ones were encountered" in again.summary_text


def _started_per_task(port: int) -> dict[str, float]:
    """luigid's luigi_task_started_total by task family: how often each task was handed to a worker."""
    started = {}
    for line in ops.metrics_text(port).splitlines():
        if line.startswith("luigi_task_started_total{"):
            family = line.split('family="')[1].split('"')[0]
            started[family] = started.get(family, 0) + float(line.rsplit(" ", 1)[1])
    return started


def test_two_workers_on_one_pipeline_run_each_task_once_and_both_exit_0(data_root, luigid, tmp_path):
    ops.write_nc_drops([SNAPSHOT], voters=300)
    settings = tmp_path / "scheduler.cfg"  # read after luigi.cfg: only the scheduler's address changes
    settings.write_text(f"[core]\ndefault-scheduler-host = 127.0.0.1\ndefault-scheduler-port = {luigid}\n")
    env = dict(os.environ, LUIGI_CONFIG_PATH=str(settings))
    voterpipe = str(ops.BIN / "voterpipe")
    runs = [subprocess.Popen([voterpipe, "run", *args], cwd=ops.REPO_ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for args in (("--state", "nc", "--snapshot", "2026-11-01"),
                         ("--snapshot", "2026-11-01", "--state", "nc"))]  # luigi's pid lock would not stop these
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-3000:]

    started = _started_per_task(luigid)
    assert {family: started.get(family) for family in STAGE_TASKS} == {family: 1.0 for family in STAGE_TASKS}
    # every stage ends at 100% with a status message that names its counts
    done = _api(luigid, "task_list", status="DONE", upstream_status="", search="")
    for task_id, task in done.items():
        if task["name"] in STAGE_TASKS:
            assert task["progress_percentage"] == 100, task["name"]
            message = _api(luigid, "get_task_status_message", task_id=task_id)["statusMessage"]
            assert any(ch.isdigit() for ch in message), (task["name"], message)
    assert set(ops.cells(ops.status_json(), SNAPSHOT).values()) == {"complete", "done"}
