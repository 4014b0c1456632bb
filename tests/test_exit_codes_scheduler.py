"""Exit codes 10 (already running) and 25 (not run) against a real luigid: plain `luigi --module
voterpipe.tasks` returns them at once; `voterpipe run` waits ([voterpipe] max_wait_seconds), then
returns the same code. "Another worker" claims the task through luigid's own worker API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import luigi.rpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

from voterpipe import synth  # noqa: E402
from voterpipe.tasks import ImportSnapshot  # noqa: E402

SNAPSHOT = date(2026, 11, 1)
WAIT_SECONDS = 2
TASK = ImportSnapshot(state="nc", snapshot=SNAPSHOT)
ARGS = ("--state", "nc", "--snapshot", SNAPSHOT.isoformat())


@pytest.fixture
def luigid(data_root, tmp_path):
    """A complete NC drop (ImportSnapshot could run at once) and a luigid on a free port."""
    synth.write_drop(state="nc", voters=40, snapshot=SNAPSHOT, seed=11)
    proc, port = ops.start_luigid(tmp_path)
    yield port
    ops.stop(proc)


def _env(port: int, tmp_path: Path) -> dict:
    settings = tmp_path / "scheduler.cfg"  # read after luigi.cfg: the scheduler and the wait change
    settings.write_text(f"[core]\ndefault-scheduler-host = 127.0.0.1\ndefault-scheduler-port = {port}\n"
                        f"[voterpipe]\nmax_wait_seconds = {WAIT_SECONDS}\n")
    return dict(os.environ, LUIGI_CONFIG_PATH=str(settings))


def _plain_luigi(env: dict, tmp_path: Path) -> tuple[int, str]:
    run = subprocess.run([str(ops.BIN / "luigi"), "--module", "voterpipe.tasks", "ImportSnapshot", *ARGS,
                          "--lock-pid-dir", str(tmp_path / "pids")],
                         cwd=ops.REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def _voterpipe_run(env: dict) -> tuple[int, str, float]:
    started = time.monotonic()
    run = subprocess.run([str(ops.BIN / "voterpipe"), "run", *ARGS, "--task", "ImportSnapshot"],
                         cwd=ops.REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr, time.monotonic() - started


def _running(port: int) -> dict:
    return ops.luigid_api(port, "task_list", status="RUNNING", upstream_status="", search="ImportSnapshot")


def test_another_worker_holding_the_task_gives_10(luigid, data_root, tmp_path):
    holder = luigi.rpc.RemoteScheduler(f"http://127.0.0.1:{luigid}")
    holder.add_task(worker="holder", task_id=TASK.task_id, status="PENDING", runnable=True,
                    family=TASK.task_family, params=TASK.to_str_params())
    assert holder.get_work(worker="holder")["task_id"] == TASK.task_id  # RUNNING on "holder" now
    env = _env(luigid, tmp_path)

    code, output = _plain_luigi(env, tmp_path)
    assert code == 10, output[-3000:]
    assert "1 were being run by another worker" in output and "ImportSnapshot(state=nc, snapshot=2026-11-01)" in output

    code, output, seconds = _voterpipe_run(env)
    assert code == 10, output[-3000:]
    assert "1 task(s) of this run are being run by another worker; checking again in 2s" in output
    assert (f"gave up after waiting {WAIT_SECONDS}s ([voterpipe] max_wait_seconds): 1 task(s) of this run "
            "still run by another worker or not granted by the scheduler") in output
    assert "were being run by another worker" in output and output.rstrip().endswith("exit code 10")
    assert seconds >= WAIT_SECONDS
    # neither run took the task from its holder, nor imported anything
    assert _running(luigid)[TASK.task_id]["worker_running"].startswith("holder")
    assert not TASK.complete()


def test_a_paused_scheduler_gives_25(luigid, data_root, tmp_path):
    holder = luigi.rpc.RemoteScheduler(f"http://127.0.0.1:{luigid}")
    holder.pause()  # the visualiser's pause button: luigid grants no task to any worker
    assert holder.is_paused()["paused"]
    env = _env(luigid, tmp_path)

    code, output = _plain_luigi(env, tmp_path)
    assert code == 25, output[-3000:]
    assert "were not granted run permission by the scheduler" in output

    code, output, seconds = _voterpipe_run(env)
    assert code == 25, output[-3000:]
    assert (f"gave up after waiting {WAIT_SECONDS}s ([voterpipe] max_wait_seconds): 1 task(s) of this run "
            "still run by another worker or not granted by the scheduler") in output
    assert "were not granted run permission by the scheduler" in output
    assert output.rstrip().endswith("exit code 25")
    assert seconds >= WAIT_SECONDS
    assert _running(luigid) == {} and not TASK.complete()


def test_a_run_waiting_on_a_paused_scheduler_finishes_when_it_resumes(luigid, data_root, tmp_path):
    holder = luigi.rpc.RemoteScheduler(f"http://127.0.0.1:{luigid}")
    holder.pause()
    settings = tmp_path / "scheduler.cfg"
    settings.write_text(f"[core]\ndefault-scheduler-host = 127.0.0.1\ndefault-scheduler-port = {luigid}\n"
                        "[voterpipe]\nmax_wait_seconds = 60\n")
    run = subprocess.Popen([str(ops.BIN / "voterpipe"), "run", *ARGS, "--task", "ImportSnapshot"], cwd=ops.REPO_ROOT,
                           env=dict(os.environ, LUIGI_CONFIG_PATH=str(settings)), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in run.stdout:  # the first attempt is over and the run waits: only then resume luigid
        seen.append(line)
        if "checking again in 3s" in line:
            break
    holder.unpause()
    output = "".join(seen) + run.communicate(timeout=120)[0]
    assert run.returncode == 0, output[-3000:]
    assert "checking again in 3s" in output and "gave up" not in output and TASK.complete()
