"""Luigi event handlers on every stage: the operations log line (one per stage run, with its
counts), the time-limit watch and the alerts. Importing this module registers them."""

from __future__ import annotations

import logging
import threading

import luigi

from voterpipe import catalog, quality, storage
from voterpipe.ops import alerts, failures
from voterpipe.ops.counts import format_counts, stage_counts
from voterpipe.ops.logs import log_file_path
from voterpipe.tasks.base import SnapshotTask
from voterpipe.tasks.enrich import EnrichSnapshot

log = logging.getLogger("voterpipe.ops.stages")
SUMMARY_STAGES = ("canonical", "addresses", "geocoded", "households", "cohorts", "publish")


def _manifest(stage: str, state: str, snapshot) -> dict:
    directory = catalog.stage(stage).directory(state, snapshot)
    return storage.read_manifest(directory) if storage.is_published(directory) else {}


def _share_luigi_handlers() -> None:
    """Under plain `luigi --module voterpipe.tasks ...` only luigi's own logger has a handler; give
    voterpipe's lines (progress, stage counts) the same one, once. voterpipe's commands configure
    the root logger instead (ops/logs.py) and are left alone."""
    ours, theirs = logging.getLogger("voterpipe"), logging.getLogger("luigi-interface")
    if logging.getLogger().handlers or ours.handlers or not theirs.handlers:
        return
    for handler in theirs.handlers:
        ours.addHandler(handler)
    ours.setLevel(theirs.getEffectiveLevel())


@SnapshotTask.event_handler(luigi.Event.START)
def _started(task: SnapshotTask) -> None:
    _share_luigi_handlers()
    limit = alerts.time_limit_seconds(task.task_family)
    if limit > 0 and alerts.enabled():
        timer = threading.Timer(limit, _overtime, args=(task, limit))
        timer.daemon = True
        timer.start()
        task._voterpipe_timer = timer


def _stop_timer(task) -> None:
    timer = getattr(task, "_voterpipe_timer", None)
    if timer is not None:
        timer.cancel()


def _overtime(task: SnapshotTask, limit: float) -> None:
    log.warning("stage %s %s %s still running after its limit of %.3g s", task.stage_name, task.state,
                task.snapshot, limit)
    alerts.send(alerts.notice(
        alerts.TASK_OVERTIME, f"{task.task_family} {task.state} {task.snapshot} has run longer than its "
                              f"limit of {limit / 60:g} min", task, limit_seconds=limit, stage=task.stage_name))


@SnapshotTask.event_handler(luigi.Event.PROCESSING_TIME)
def _timed(task: SnapshotTask, seconds: float) -> None:
    task._voterpipe_seconds = seconds


@SnapshotTask.event_handler(luigi.Event.SUCCESS)
def _succeeded(task: SnapshotTask) -> None:
    _stop_timer(task)
    counts = stage_counts(task.stage_name, _manifest(task.stage_name, task.state, task.snapshot))
    seconds = getattr(task, "_voterpipe_seconds", 0.0)
    failures.clear(task.state, task.snapshot, task.stage_name)
    log.info("stage %s %s %s done in %.1fs: %s", task.stage_name, task.state, task.snapshot, seconds,
             format_counts(counts))


@SnapshotTask.event_handler(luigi.Event.FAILURE)
def _failed(task: SnapshotTask, exception: BaseException) -> None:
    _stop_timer(task)
    if isinstance(exception, quality.QualityGateError):
        gates = [{"gate": r.name, "value": r.value, "threshold": r.threshold, "limit": r.limit, "detail": r.detail}
                 for r in exception.failed]
        text = "; ".join(r.describe() for r in exception.failed)
        log.error("stage %s %s %s failed its quality gate(s): %s", task.stage_name, task.state, task.snapshot, text)
        _record(task, "gate", text, gates=gates)
        if alerts.enabled():
            alerts.send(alerts.notice(
                alerts.QUALITY_GATE_FAILED,
                "; ".join(f"quality gate {g['gate']} = {g['value']} (threshold {g['threshold']})" for g in gates)
                + f": {task.state} {task.snapshot} not published, the warehouse keeps the previous snapshot",
                task, stage=task.stage_name, gates=gates))
        return
    error = alerts.last_line(exception)
    log.error("stage %s %s %s failed: %s", task.stage_name, task.state, task.snapshot, error)
    _record(task, "error", error)
    if alerts.enabled():
        alerts.send(alerts.notice(
            alerts.TASK_FAILED, f"{task.task_family} {task.state} {task.snapshot} failed: {error}", task,
            stage=task.stage_name, error=error, log=log_file_path() or "the run's stderr"))


def _record(task: SnapshotTask, kind: str, text: str, **extra) -> None:
    try:
        fingerprint = task.fingerprint().value
    except Exception:  # the failure itself may be what breaks the fingerprint
        fingerprint = None
    failures.record(task.state, task.snapshot, task.stage_name, kind, text, fingerprint, **extra)


@SnapshotTask.event_handler(luigi.Event.TIMEOUT)
def _killed(task: SnapshotTask, message: str) -> None:
    # [worker] timeout / worker_timeout killed it (fires in the parent worker)
    if alerts.enabled():
        alerts.send(alerts.notice(alerts.TASK_OVERTIME, message, task, stage=task.stage_name, terminated=True))


def snapshot_summary(state: str, snapshot) -> dict:
    """The counts of a finished snapshot, by stage."""
    return {stage: stage_counts(stage, _manifest(stage, state, snapshot)) for stage in SUMMARY_STAGES}


@EnrichSnapshot.event_handler(luigi.Event.SUCCESS)
def _snapshot_finished(task: EnrichSnapshot) -> None:
    summary = snapshot_summary(task.state, task.snapshot)
    log.info("snapshot %s %s finished: voters=%s published_rows=%s", task.state, task.snapshot,
             summary["canonical"].get("rows"), summary["publish"].get("table_rows"))
    if alerts.enabled():
        match = summary["geocoded"].get("match_rate")
        alerts.send(alerts.notice(
            alerts.SNAPSHOT_FINISHED,
            f"{task.state} {task.snapshot} published: {summary['canonical'].get('rows')} voters, "
            f"{summary['canonical'].get('rejects')} rejected lines, {summary['households'].get('rows')} households"
            + (f", geocode match rate {match:.1%}" if match is not None else ""),
            task, counts=summary))
