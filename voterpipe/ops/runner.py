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
MAX_WAIT_SECONDS = 24 * 3600.0  # a vanished worker's tasks return to PENDING within a minute anyway


def build_waiting(tasks: list, *, local_scheduler: bool = False, poll_seconds: float = POLL_SECONDS,
                  **build_options) -> luigi.execution_summary.LuigiRunResult:
    """luigi.build(..., detailed_summary=True), again every `poll_seconds` while only other
    workers stand between this run and its end (nothing failed, no data missing)."""
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while True:
        result = luigi.build(tasks, local_scheduler=local_scheduler, detailed_summary=True, **build_options)
        sets = summary._summary_dict(result.worker)
        elsewhere = set(sets.get("run_by_other_worker", ())) | set(sets.get("not_run", ()))
        settled = sets.get("failed") or sets.get("still_pending_ext") or sets.get("scheduling_error")
        if local_scheduler or not elsewhere or settled or time.monotonic() > deadline:
            return result
        log.info("%d task(s) of this run are being run by another worker; checking again in %.0fs",
                 len(elsewhere), poll_seconds)
        time.sleep(poll_seconds)
