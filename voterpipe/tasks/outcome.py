"""The exit code and the messages of a Luigi run: the codes `luigi` gives with [retcode] (20
missing data, 30 a task failed, ...), and [quality] exit_code when a quality gate failed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import luigi
import luigi.execution_summary as summary

from voterpipe import config
from voterpipe.tasks.base import QUALITY_GATE_FAILURE
from voterpipe.tasks.imports import RawDrop


# luigi.cfg's [retcode]; used for an option it does not set (luigi's own default is 0: success)
SHIPPED_RETCODES = {"already_running": 10, "missing_data": 20, "not_run": 25, "task_failed": 30,
                    "scheduling_error": 35, "unhandled_exception": 40}


def retcodes() -> dict[str, int]:
    """[retcode] as configured, the shipped codes where luigi.cfg is absent or silent."""
    parser = luigi.configuration.get_config()
    return {name: parser.getint("retcode", name, default) for name, default in SHIPPED_RETCODES.items()}


@dataclass
class RunOutcome:
    code: int
    messages: list[str] = field(default_factory=list)


def _error_text(scheduler, task_id: str) -> str:
    try:
        error = scheduler.fetch_error(task_id).get("error") or ""
    except Exception:  # a remote scheduler that went away: the code still stands
        return ""
    try:
        decoded = json.loads(error)
    except (TypeError, ValueError):
        decoded = error
    return decoded if isinstance(decoded, str) else str(decoded)


def run_outcome(result: luigi.execution_summary.LuigiRunResult) -> RunOutcome:
    """Luigi's [retcode] rules over the run's tasks (as luigi.retcodes.run_with_retcodes applies
    them), a failed quality gate raising the code to [quality] exit_code."""
    codes = retcodes()
    worker = result.worker
    tasks = summary._summary_dict(worker)
    messages = []
    for task in sorted(tasks.get("still_pending_ext", ()), key=str):
        if isinstance(task, RawDrop):
            messages.append(task.output().status().reason())
        else:
            messages.append(f"{task} is missing")
    gate_failed = False
    for task in sorted(tasks.get("failed", ()), key=str):
        text = _error_text(worker._scheduler, task.task_id)
        if text.startswith(QUALITY_GATE_FAILURE):
            gate_failed = True
            messages.append(text[len(QUALITY_GATE_FAILURE):])
        else:
            messages.append(f"{task} failed: {text.strip().splitlines()[-1] if text.strip() else 'see the log'}")
    candidates = [
        (codes["missing_data"], bool(tasks.get("still_pending_ext"))),
        (codes["task_failed"], bool(tasks.get("failed"))),
        (config.quality_gate_retcode(), gate_failed),
        (codes["already_running"], bool(tasks.get("run_by_other_worker"))),
        (codes["scheduling_error"], bool(tasks.get("scheduling_error"))),
        (codes["not_run"], bool(tasks.get("not_run"))),
    ]
    code = max(value if holds else 0 for value, holds in candidates)
    root = summary._root_task(worker)
    if code == 0 and root not in tasks.get("completed", ()) and root not in tasks.get("already_done", ()):
        code = codes["not_run"]
    return RunOutcome(code, messages)
