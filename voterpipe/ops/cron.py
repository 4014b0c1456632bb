"""`voterpipe cron`: for each configured state, every complete drop not yet published, oldest
first, through EnrichSnapshot; against luigid when it answers, else the local scheduler. One
run per data root at a time (lock.py); the exit code is the worst of the runs' codes."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import date

import luigi

from voterpipe import config, storage
from voterpipe.ops.lock import DataRootLock, DataRootLocked
from voterpipe.ops.runner import build_waiting

log = logging.getLogger("voterpipe.ops.cron")


@dataclass
class Plan:
    """What one cron run will do: pending drops per state, and the incomplete drops it skips."""

    pending: dict[str, list[date]] = field(default_factory=dict)
    incomplete: dict[str, list[tuple[date, str]]] = field(default_factory=dict)


def configured_states(text: str | None = None) -> list[str]:
    """[cron] states (or `text`), else every state with a directory under 01_raw/."""
    text = config.cron().states if text is None else text
    states = [s.strip().lower() for s in str(text).split(",") if s.strip()]
    if states:
        return list(dict.fromkeys(states))
    raw = storage.layer_dir("raw")
    return [name for name in storage.child_names(raw) if len(name) == 2]  # the bucket's for an s3:// root


def plan(states: list[str]) -> Plan:
    """Complete drops whose EnrichSnapshot is not complete (never published, or out of date)."""
    from voterpipe.tasks import EnrichSnapshot, RawDrop
    from voterpipe.tasks.backfill import drop_dates

    found = Plan()
    for state in states:
        for day in drop_dates(state):
            drop = RawDrop(state=state, snapshot=day)
            status = drop.output().status()
            if not status.complete:
                found.incomplete.setdefault(state, []).append((day, status.reason()))
            elif not EnrichSnapshot(state=state, snapshot=day).complete():
                found.pending.setdefault(state, []).append(day)
    return found


def scheduler_url(explicit: str | None = None) -> str:
    """`explicit`, else the central scheduler luigi.cfg [core] names (default http://localhost:8082/)."""
    if explicit:
        return explicit.rstrip("/") + "/"
    core = luigi.interface.core()
    if core.scheduler_url:
        return core.scheduler_url.rstrip("/") + "/"
    return f"http://{core.scheduler_host}:{core.scheduler_port}/"


def luigid_answers(url: str, timeout: float = 3.0) -> bool:
    query = urllib.parse.urlencode({"data": json.dumps({"status": "RUNNING", "upstream_status": "", "search": ""})})
    try:
        with urllib.request.urlopen(f"{url}api/task_list?{query}", timeout=timeout) as response:
            json.loads(response.read())
        return True
    except (OSError, ValueError):
        return False


def run_drop(state: str, snapshot: date, workers: int, local_scheduler: bool, url: str) -> int:
    """EnrichSnapshot for one drop; its exit code (voterpipe.tasks.outcome)."""
    from voterpipe.tasks import EnrichSnapshot
    from voterpipe.tasks.outcome import retcodes, run_outcome

    luigi.task_register.Register.clear_instance_cache()
    try:
        result = build_waiting([EnrichSnapshot(state=state, snapshot=snapshot)], workers=workers,
                               local_scheduler=local_scheduler, scheduler_url=url)
    except Exception:
        log.exception("cron %s %s: uncaught exception", state, snapshot)
        return retcodes()["unhandled_exception"]
    outcome = run_outcome(result)
    for message in outcome.messages:
        log.error("cron %s %s: %s", state, snapshot, message.splitlines()[0])
    return outcome.code


def run_cron(states: list[str] | None = None, workers: int | None = None,
             local_scheduler: bool = False, scheduler_url: str | None = None) -> int:
    """The whole cron run under the data root's lock; its exit code."""
    root = config.data_root()
    try:
        with DataRootLock(root):
            return _run_locked(states, workers or config.cron().workers, local_scheduler, scheduler_url)
    except DataRootLocked as exc:
        print(f"voterpipe cron: {exc}")
        return config.cron().lock_exit_code


def _run_locked(states: list[str] | None, workers: int, local_scheduler: bool, explicit_url: str | None) -> int:
    started = time.monotonic()
    states = configured_states() if states is None else states
    found = plan(states)
    for state, drops in found.incomplete.items():
        for day, reason in drops:
            log.info("cron %s %s: skipped, %s", state, day, reason)
    total = sum(len(d) for d in found.pending.values())
    url = scheduler_url(explicit_url)
    if total and not local_scheduler:
        if not luigid_answers(url):
            log.warning("cron: luigid does not answer at %s; running with the local scheduler "
                        "(start it with `make luigid`)", url)
            local_scheduler = True
    log.info("cron: states %s; %d drop(s) to run; scheduler %s", ",".join(states) or "none", total,
             "local" if local_scheduler else url)
    worst = 0
    for state, drops in found.pending.items():
        for day in drops:
            code = run_drop(state, day, workers, local_scheduler, url)
            log.info("cron %s %s: exit code %d", state, day, code)
            worst = max(worst, code)
            if code:
                # later drops compare with this one: they wait until it is fixed
                left = [d.isoformat() for d in drops if d > day]
                if left:
                    log.warning("cron %s: not running %s until %s succeeds", state, ", ".join(left), day)
                break
    swept = storage.sweep_remote()  # s3:// root: upload prefixes killed workers left behind
    if any(swept.values()):
        log.info("cron: swept %d abandoned upload prefix(es) from the bucket", sum(map(len, swept.values())))
    log.info("cron: finished in %.1fs, exit code %d", time.monotonic() - started, worst)
    return worst
