"""`voterpipe cron`: three pending drops published in date order with an incomplete one skipped,
the data-root lock refusing an overlapping run whose arguments come in another order, the lock
released by a crash, and the exit codes of a cron run; `voterpipe status` after each."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

from voterpipe import storage  # noqa: E402
from voterpipe.ops.lock import LOCK_FILE, DataRootLock, DataRootLocked  # noqa: E402

pytestmark = pytest.mark.slow

DROPS = [date(2026, 11, 1), date(2026, 11, 8), date(2026, 11, 15)]
INCOMPLETE = date(2026, 11, 22)
LOCKED = 11  # luigi.cfg [cron] lock_exit_code
TASK_FAILED, UNHANDLED, QUALITY_GATE = 30, 40, 50
STAGES = ("canonical", "addresses", "geocoded", "households", "cohorts", "voter_file", "report", "publish")


def _publications(root: Path) -> list[date]:
    """The snapshots the warehouse holds, in the order they were published."""
    from voterpipe.tasks.publish import configured_warehouse

    first = {}
    for row in configured_warehouse().publications():
        first.setdefault(row["snapshot"], row["published_at"])
        first[row["snapshot"]] = min(first[row["snapshot"]], row["published_at"])
    return [day for day, _ in sorted(first.items(), key=lambda item: item[1])]


def _incomplete_drop() -> Path:
    """The week after: its voter file is there, its history file and the marker are not."""
    ops.write_nc_drops([INCOMPLETE], voters=300)
    drop = storage.raw_dir("nc", INCOMPLETE)
    (drop / "ncvhis_Statewide.txt").unlink()
    (drop / "_READY").unlink()
    return drop


def test_cron_publishes_pending_drops_oldest_first_and_skips_an_incomplete_one(data_root, tmp_path, capsys):
    ops.write_nc_drops(DROPS, voters=300)
    _incomplete_drop()
    before = ops.status_json()
    assert [ops.cells(before, d)["raw"] for d in DROPS + [INCOMPLETE]] == ["complete"] * 3 + ["incomplete"]
    assert all(ops.cells(before, d)[s] == "missing" for d in DROPS for s in STAGES)

    log_file = tmp_path / "var" / "log" / "voterpipe.log"
    down = f"http://127.0.0.1:{ops.free_port()}/"  # nothing listens: cron falls back to the local scheduler
    code, output = ops.voterpipe("cron", "--scheduler-url", down, "--log-file", str(log_file), capsys=capsys)
    assert code == 0, output

    assert _publications(data_root) == DROPS  # in date order
    log = log_file.read_text()
    assert f"luigid does not answer at {down}" in log
    publish_lines = [line for line in log.splitlines() if " stage publish nc " in line]
    assert [line.split(" stage publish nc ")[1][:10] for line in publish_lines] == [d.isoformat() for d in DROPS]
    assert f"cron nc {INCOMPLETE}: skipped, raw drop" in log and "missing history file" in log
    # one line per stage run with its counts, none doubled
    stage_lines = [line for line in log.splitlines() if " stage " in line and " done in " in line]
    assert len(stage_lines) == len(DROPS) * len(STAGES) == len(set(stage_lines))
    assert any("stage canonical nc 2026-11-01 done in" in line and "rows=" in line and "rejects=" in line
               for line in stage_lines)
    assert any("stage geocoded nc" in line and "match_rate=" in line for line in stage_lines)

    after = ops.status_json()
    for day in DROPS:
        assert set(ops.cells(after, day).values()) == {"complete", "done"}, ops.cells(after, day)
    assert ops.cells(after, INCOMPLETE)["raw"] == "incomplete"
    assert ops.cells(after, INCOMPLETE)["canonical"] == "missing"
    assert after["warehouse"]["states"]["nc"]["current"] == DROPS[-1].isoformat()

    # nothing left to do: the next cron run publishes nothing and says so
    code, output = ops.voterpipe("cron", "--local-scheduler", "--log-file", str(log_file), capsys=capsys)
    assert code == 0, output
    assert "0 drop(s) to run" in log_file.read_text().splitlines()[-2]


def _cron_process(*args: str, log_file: Path) -> subprocess.Popen:
    return subprocess.Popen([str(ops.BIN / "voterpipe"), "cron", *args, "--log-file", str(log_file)],
                            cwd=ops.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_lock_refuses_an_overlapping_run_with_its_arguments_in_another_order(data_root, tmp_path):
    ops.write_nc_drops(DROPS[:1], voters=300)
    log_file = tmp_path / "voterpipe.log"
    first = _cron_process("--state", "nc", "--local-scheduler", log_file=log_file)
    lock = data_root / LOCK_FILE
    deadline = time.monotonic() + 30
    while not (lock.exists() and lock.read_text().startswith("pid")):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.05)

    started = time.monotonic()
    second = _cron_process("--local-scheduler", "--state", "nc", log_file=log_file)
    out, err = second.communicate(timeout=60)
    assert second.returncode == LOCKED, err
    assert out.strip().count("\n") == 0  # one line
    assert f"another voterpipe run holds {lock} (pid {first.pid})" in out
    assert time.monotonic() - started < 15  # at once (the interpreter's start apart)
    assert first.poll() is None  # the refused run did not disturb the running one

    out, err = first.communicate(timeout=180)
    assert first.returncode == 0, err
    # logging configured once: luigi's own handler ('INFO: ...', DEBUG without luigi.cfg) is not there
    lines = err.splitlines()
    assert any("luigi-interface: Informed scheduler" in line for line in lines)
    assert not [line for line in lines if line.startswith(("INFO: ", "DEBUG: ")) or " DEBUG " in line]
    assert len([line for line in lines if "stage canonical nc 2026-11-01 done in" in line]) == 1
    assert ops.cells(ops.status_json(), DROPS[0])["publish"] == "done"


def test_a_crashed_run_leaves_no_lock(data_root):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import os, signal, sys; from voterpipe.ops.lock import DataRootLock\n"
        f"lock = DataRootLock({str(data_root)!r}).__enter__(); print('held', flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert holder.wait(timeout=30) == -signal.SIGKILL
    with DataRootLock(data_root):  # the kernel released it with the process
        with pytest.raises(DataRootLocked):
            DataRootLock(data_root).__enter__()


@pytest.fixture
def one_drop(data_root):
    ops.write_nc_drops(DROPS[:1], voters=300)
    return data_root


def test_exit_code_0_when_there_is_nothing_to_do(data_root, tmp_path, capsys):
    assert ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "l.log"), capsys=capsys)[0] == 0


def test_exit_code_of_a_failed_quality_gate(one_drop, tmp_path, capsys):
    with ops.config_values({("quality", "rejected_lines"): -1}):  # no drop can pass
        code, output = ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "l.log"), capsys=capsys)
        assert code == QUALITY_GATE, output
        row = ops.cells(ops.status_json(), DROPS[0])
        assert row["canonical"] == "failed gate" and row["addresses"] == "missing"
        why = ops.status_json()["states"]["nc"][DROPS[0].isoformat()]["canonical"]["why"][0]
        assert why.startswith("rejected_lines = 0.0000 (threshold: at most -1)")
    assert "failed its quality gate(s): rejected_lines" in (tmp_path / "l.log").read_text()


def test_exit_code_of_a_failed_task(one_drop, tmp_path, capsys, monkeypatch):
    from voterpipe.tasks import NormaliseAddresses

    def broken(self, staging):
        raise RuntimeError("address cache unreadable: cache/addresses/part-0001.parquet")

    monkeypatch.setattr(NormaliseAddresses, "build", broken)
    code, output = ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "l.log"), capsys=capsys)
    assert code == TASK_FAILED, output
    row = ops.cells(ops.status_json(), DROPS[0])
    assert row["canonical"] == "done" and row["addresses"] == "failed" and row["publish"] == "missing"


def test_exit_code_of_an_unhandled_exception(one_drop, tmp_path, capsys, monkeypatch):
    import voterpipe.ops.cron as cron

    def crash(*args, **kwargs):
        raise OSError("scheduler socket closed")

    monkeypatch.setattr(cron, "build_waiting", crash)
    code, output = ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "l.log"), capsys=capsys)
    assert code == UNHANDLED, output
    assert "uncaught exception" in (tmp_path / "l.log").read_text()


def test_a_failed_drop_holds_back_the_later_drops_of_its_state(data_root, tmp_path, capsys):
    ops.write_nc_drops(DROPS[:2], voters=300)
    with ops.config_values({("quality", "rejected_lines"): -1}):
        code, _ = ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "l.log"), capsys=capsys)
    assert code == QUALITY_GATE
    assert f"not running {DROPS[1]} until {DROPS[0]} succeeds" in (tmp_path / "l.log").read_text()
    assert not storage.stage_dir("canonical", "nc", DROPS[1]).exists()


def test_plain_luigi_prints_the_stage_counts_once(one_drop):
    run = subprocess.run([str(ops.BIN / "luigi"), "--module", "voterpipe.tasks", "ImportSnapshot", "--state", "nc",
                          "--snapshot", DROPS[0].isoformat(), "--local-scheduler"],
                         cwd=ops.REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stderr.splitlines()
    counts = [line for line in lines if f"stage canonical nc {DROPS[0]} done in" in line]
    assert len(counts) == 1 and "rows=" in counts[0] and "rejects=" in counts[0]
    assert len([line for line in lines if "Done scheduling tasks" in line]) == 1


def test_exit_code_of_a_scheduling_error(one_drop, tmp_path, capsys, monkeypatch):
    from voterpipe.tasks import GeocodeAddresses

    def unreadable(self):
        raise PermissionError("04_geocoded/nc: permission denied")

    monkeypatch.setattr(GeocodeAddresses, "complete", unreadable)
    code, output = ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "l.log"), capsys=capsys)
    assert code == 35, output  # luigi.cfg [retcode] scheduling_error
    assert not (storage.stage_dir("reporting/published", "nc", DROPS[0]) / "manifest.json").exists()
