"""luigi.build for a run that may share luigid with other workers: while another worker runs some
of this run's tasks, wait and schedule again, so the run ends when its work is done (exit 0),
not with "run by another worker" (10) or "not granted run permission" (25) halfway through."""

from __future__ import annotations

import logging
import time

import luigi
import luigi.execution_summary as summary

log = logging.getLogger("voterpipe.ops.runner")
POLL_SECONDS = 3.0
# [voterpipe] max_wait_seconds; a vanished worker's tasks return to PENDING within a minute anyway
MAX_WAIT_SECONDS = 24 * 3600.0


def max_wait_seconds() -> float:
    """How long a run waits for other workers before it exits 10 (already running) or 25 (not run)."""
    return luigi.configuration.get_config().getfloat("voterpipe", "max_wait_seconds", MAX_WAIT_SECONDS)


def build_waiting(tasks: list, *, local_scheduler: bool = False, poll_seconds: float = POLL_SECONDS,
                  **build_options) -> luigi.execution_summary.LuigiRunResult:
    """luigi.build(..., detailed_summary=True), again every `poll_seconds` while only other
    workers stand between this run and its end (nothing failed, no data missing)."""
    max_wait = max_wait_seconds()
    deadline = time.monotonic() + max_wait
    while True:
        result = luigi.build(tasks, local_scheduler=local_scheduler, detailed_summary=True, **build_options)
        sets = summary._summary_dict(result.worker)
        elsewhere = set(sets.get("run_by_other_worker", ())) | set(sets.get("not_run", ()))
        settled = sets.get("failed") or sets.get("still_pending_ext") or sets.get("scheduling_error")
        if local_scheduler or not elsewhere or settled:
            return result
        if time.monotonic() >= deadline:
            log.warning("gave up after waiting %.0fs ([voterpipe] max_wait_seconds): %d task(s) of this run "
                        "still run by another worker or not granted by the scheduler", max_wait, len(elsewhere))
            return result
        pause = max(0.0, min(poll_seconds, deadline - time.monotonic()))
        log.info("%d task(s) of this run are being run by another worker; checking again in %.0fs",
                 len(elsewhere), pause)
        time.sleep(pause)
