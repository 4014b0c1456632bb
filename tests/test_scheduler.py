"""A real luigid: the stages show up in the scheduler with their progress and status messages."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import date
from pathlib import Path

import luigi
import pytest

from voterpipe import synth
from voterpipe.tasks import ImportSnapshot

SNAPSHOT = date(2026, 11, 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _api(port: int, method: str, **data) -> dict:
    query = urllib.parse.urlencode({"data": json.dumps(data)})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/{method}?{query}", timeout=5) as resp:
        return json.loads(resp.read())["response"]


@pytest.fixture
def luigid(tmp_path):
    port = _free_port()
    luigid_bin = Path(sys.executable).with_name("luigid")
    proc = subprocess.Popen(
        [str(luigid_bin), "--address", "127.0.0.1", "--port", str(port),
         "--state-path", str(tmp_path / "luigi-state.pickle"), "--logdir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _api(port, "task_list", status="DONE", upstream_status="", search="")
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("luigid did not start")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


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
