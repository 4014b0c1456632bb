"""Alerts reach a webhook receiver and an SMTP receiver on 127.0.0.1 for each event: a quality
gate failed, a task failed, a stage ran past its time limit, a snapshot finished. None carries a
voter's name or address; with [alerts] unset nothing is sent."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ops_servers as ops  # noqa: E402

from voterpipe import storage  # noqa: E402

pytestmark = pytest.mark.slow

SNAPSHOT = date(2026, 11, 1)


@pytest.fixture
def receiver():
    hook = ops.WebhookReceiver()
    yield hook
    hook.close()


@pytest.fixture
def smtp():
    server = ops.SMTPReceiver()
    yield server
    server.close()


def _voter_words(root: Path) -> set[str]:
    """Last names and street names of the synthetic voters: what an alert must never contain."""
    import pandas as pd

    voters = pd.read_csv(storage.raw_dir("nc", SNAPSHOT, root) / "ncvoter_Statewide.txt", sep="\t",
                         dtype=str, encoding="latin-1")
    words = set(voters["last_name"].dropna()) | set(voters["res_street_address"].dropna())
    return {w for w in words if len(w) > 3}


def _cron(tmp_path, capsys) -> int:
    return ops.voterpipe("cron", "--local-scheduler", "--log-file", str(tmp_path / "voterpipe.log"), capsys=capsys)[0]


def test_an_alert_for_each_event_and_none_carries_voter_data(data_root, tmp_path, capsys, receiver, smtp, monkeypatch):
    ops.write_nc_drops([SNAPSHOT], voters=300)
    destinations = {("alerts", "webhook_url"): receiver.url}

    # 1. a quality gate fails at import, after the import ran past its (tiny) time limit
    with ops.config_values({**destinations, ("quality", "rejected_lines"): -1,
                            ("alerts", "time_limits"): "ImportSnapshot=0.0001"}):
        assert _cron(tmp_path, capsys) == 50
        assert ops.cells(ops.status_json(), SNAPSHOT)["canonical"] == "failed gate"
    # with the threshold back, that failure no longer describes the stage: it is just not built
    assert ops.cells(ops.status_json(), SNAPSHOT)["canonical"] == "missing"
    assert receiver.events() == ["task_overtime", "quality_gate_failed"]
    overtime, gate = receiver.bodies
    assert overtime["task"] == "ImportSnapshot" and overtime["limit_seconds"] == pytest.approx(0.006)
    assert gate["gates"] == [{"gate": "rejected_lines", "value": 0.0, "threshold": -1.0, "limit": "max",
                              "detail": gate["gates"][0]["detail"]}]
    assert gate["state"] == "nc" and gate["snapshot"] == SNAPSHOT.isoformat() and gate["stage"] == "canonical"

    # 2. a task fails: the task, the error's last line and where the log is
    from voterpipe.tasks import BuildHouseholds

    def broken(self, staging):
        raise RuntimeError("households: building_key missing from 03_addresses\nsee the addresses manifest")

    with monkeypatch.context() as patch, ops.config_values(destinations):
        patch.setattr(BuildHouseholds, "build", broken)
        assert _cron(tmp_path, capsys) == 30
    failure = receiver.bodies[-1]
    assert failure["event"] == "task_failed" and failure["task"] == "BuildHouseholds"
    assert failure["error"] == "see the addresses manifest"
    assert failure["log"] == str(tmp_path / "voterpipe.log")
    row = ops.cells(ops.status_json(), SNAPSHOT)
    assert row["canonical"] == "done" and row["households"] == "failed" and row["publish"] == "missing"

    # 3. the snapshot finishes: a summary of counts, by webhook and by email
    with ops.config_values({**destinations, ("alerts", "email_to"): "ops@example.org",
                            ("alerts", "smtp_host"): "127.0.0.1", ("alerts", "smtp_port"): smtp.port}):
        assert _cron(tmp_path, capsys) == 0
    finished = receiver.bodies[-1]
    assert finished["event"] == "snapshot_finished"
    canonical = storage.read_manifest(storage.stage_dir("canonical", "nc", SNAPSHOT))
    assert finished["counts"]["canonical"]["rows"] == canonical["totals"]["voters_loaded"]
    assert finished["counts"]["publish"]["rows"] == canonical["totals"]["voters_loaded"]
    assert 0.9 <= finished["counts"]["geocoded"]["match_rate"] <= 1.0
    assert len(smtp.messages) == 1 and "Subject: [voterpipe] snapshot_finished EnrichSnapshot nc 2026-11-01" in smtp.messages[0]
    assert set(ops.cells(ops.status_json(), SNAPSHOT).values()) == {"complete", "done"}

    sent = json.dumps(receiver.bodies) + smtp.messages[0]
    leaked = [word for word in _voter_words(data_root) if word in sent]
    assert not leaked, leaked


def test_no_alert_without_a_destination(data_root, tmp_path, capsys, receiver):
    ops.write_nc_drops([SNAPSHOT], voters=300)
    with ops.config_values({("quality", "rejected_lines"): -1}):
        assert _cron(tmp_path, capsys) == 50
    assert receiver.bodies == []


def test_an_unreachable_webhook_does_not_fail_the_run(data_root, tmp_path, capsys):
    ops.write_nc_drops([SNAPSHOT], voters=300)
    with ops.config_values({("alerts", "webhook_url"): f"http://127.0.0.1:{ops.free_port()}/hook",
                            ("alerts", "timeout_seconds"): 1, ("quality", "rejected_lines"): -1}):
        assert _cron(tmp_path, capsys) == 50  # the gate's code, not a crash
    assert "alert quality_gate_failed not delivered by webhook" in (tmp_path / "voterpipe.log").read_text()
