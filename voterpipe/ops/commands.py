"""The `voterpipe cron` and `voterpipe status` commands (argument handling; the work is in
cron.py and status.py)."""

from __future__ import annotations

import sys
from pathlib import Path


def run_command(args) -> int:
    if args.command == "cron":
        return cron_command(args)
    return status_command(args)


def cron_command(args) -> int:
    from voterpipe import config
    from voterpipe.ops.cron import run_cron
    from voterpipe.ops.logs import attach_log_file, detach_log_file

    attach_log_file(Path(args.log_file or config.cron().log_file).expanduser().resolve())
    import voterpipe.tasks  # noqa: F401 - registers the tasks and the stage event handlers

    states = [s.lower() for s in args.state] if args.state else None
    try:
        return run_cron(states, workers=args.workers, local_scheduler=args.local_scheduler,
                        scheduler_url=args.scheduler_url)
    finally:
        detach_log_file()


def status_command(args) -> int:
    from voterpipe.ops.status import render, status, to_json

    report = status(args.state)
    print(to_json(report) if args.json else render(report))
    return 0


