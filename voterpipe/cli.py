"""The `voterpipe` command: synthetic drops, TIGER import, the geocoder service, pipeline runs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date

from voterpipe.config import DATA_ROOT_ENV


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voterpipe", description=__doc__)
    parser.add_argument("--data-root", help=f"data root (default: ${DATA_ROOT_ENV} or luigi.cfg)")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="write a synthetic drop in a state's real layout")
    synth.add_argument("--state", required=True, help="nc, oh, fl, mi, wa")
    synth.add_argument("--voters", type=int, default=10_000)
    synth.add_argument("--snapshot", type=_iso_date, required=True)
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument("--layout", default=None, help="a format name from config/formats/")
    synth.add_argument("--dirty-rate", type=float, default=0.001, help="share of damaged rows")
    synth.add_argument("--from-snapshot", type=_iso_date, default=None,
                       help="write the next snapshot of an existing synthetic state")
    synth.add_argument("--churn-rate", type=float, default=None,
                       help="with --from-snapshot: share of the roll changed (default 0.075)")

    tiger = commands.add_parser("tiger", help="offline TIGER/Line geocoder data")
    tiger_commands = tiger.add_subparsers(dest="tiger_command", required=True)
    tiger_import = tiger_commands.add_parser(
        "import", help="load ADDRFEAT/EDGES/FACES files, and FEATNAMES for alternate street names")
    tiger_import.add_argument("--dir", required=True, help="folder with the county zip/shp/dbf files")

    geocoder = commands.add_parser("geocoder", help="the Census-compatible geocoding service")
    geocoder_commands = geocoder.add_subparsers(dest="geocoder_command", required=True)
    serve = geocoder_commands.add_parser(
        "serve", help="serve /geocoder/... from the tiger engine (its full candidate search)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    run = commands.add_parser("run", help="run the pipeline for one snapshot (exit codes: README)")
    _run_options(run)

    retract = commands.add_parser("retract", help="take a published snapshot out of the warehouse")
    retract.add_argument("--state", required=True)
    retract.add_argument("--snapshot", type=_iso_date, required=True)

    docs = commands.add_parser("docs", help="write the warehouse data dictionary (docs/data-dictionary.md)")
    docs.add_argument("--out", default="docs/data-dictionary.md")

    rebuild = commands.add_parser("rebuild", help="rebuild a stage and everything downstream of it, then run")
    _run_options(rebuild)
    rebuild.add_argument("--from", dest="from_stage", required=True,
                         help="a stage of the catalogue: canonical, addresses, geocoded, households, "
                              "cohorts, voter_file, report, publish")
    _ops_commands(commands)
    return parser


def _ops_commands(commands) -> None:
    """cron and status (voterpipe/ops/)."""
    cron = commands.add_parser("cron", help="enrich every complete, unpublished drop, oldest first (README: Operations)")
    cron.add_argument("--state", action="append", default=None, metavar="S",
                      help="a state to process (repeatable; default [cron] states, else every state in 01_raw/)")
    cron.add_argument("--workers", type=int, default=None, help="default [cron] workers")
    cron.add_argument("--local-scheduler", action="store_true", help="do not try luigid")
    cron.add_argument("--scheduler-url", default=None, help="luigid's URL (default luigi.cfg [core])")
    cron.add_argument("--log-file", default=None, help="default [cron] log_file (var/log/voterpipe.log)")
    status = commands.add_parser("status", help="snapshots x stages: done, stale (why), missing, failed; the warehouse")
    status.add_argument("--state", default=None)
    status.add_argument("--json", action="store_true", help="the same as JSON")


def _run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--state", required=True)
    command.add_argument("--snapshot", type=_iso_date, required=True)
    command.add_argument("--task", default="EnrichSnapshot", help="the last task to run")
    command.add_argument("--workers", type=int, default=1)
    command.add_argument("--local-scheduler", action="store_true")
    command.add_argument("--accept", action="append", default=[], metavar="GATE",
                         help="publish although quality gate GATE fails (recorded in the manifest); repeatable")


def run_pipeline(args) -> int:
    """Build the task; print the summary and why it stopped; return luigi's [retcode] exit code."""
    import luigi

    import voterpipe.tasks as tasks
    from voterpipe.config import QUALITY_GATES
    from voterpipe.tasks.outcome import retcodes, run_outcome

    unknown = [gate for gate in args.accept if gate not in QUALITY_GATES]
    if unknown:
        print(f"unknown quality gate(s) {unknown}; the gates are {', '.join(QUALITY_GATES)}", file=sys.stderr)
        return 2
    from voterpipe import object_store, storage

    try:
        storage.check_remote()  # an s3:// data root: one line naming the endpoint, not a traceback per task
    except object_store.ObjectStoreError as exc:
        print(exc, file=sys.stderr)
        return retcodes()["scheduling_error"]
    parser = luigi.configuration.get_config()
    configured = parser.get("quality", "accept", None)
    parser.set("quality", "accept", ",".join(args.accept))  # for this run only
    luigi.task_register.Register.clear_instance_cache()  # config instances read it anew
    try:
        task_class = getattr(tasks, args.task)
        from voterpipe.ops.runner import build_waiting  # waits for tasks another luigid worker runs

        result = build_waiting([task_class(state=args.state, snapshot=args.snapshot)], workers=args.workers,
                               local_scheduler=args.local_scheduler)
    except Exception:  # as luigi's own command line: the traceback, then [retcode] unhandled_exception
        logging.getLogger("voterpipe").exception("uncaught exception in the run")
        return retcodes()["unhandled_exception"]
    finally:
        if configured is None:
            parser.remove_option("quality", "accept")
        else:
            parser.set("quality", "accept", configured)
        luigi.task_register.Register.clear_instance_cache()
    print(result.summary_text)
    outcome = run_outcome(result)
    for message in outcome.messages:
        print(message, file=sys.stderr)
    print(f"exit code {outcome.code}", file=sys.stderr)
    return outcome.code


def retract(args) -> int:
    from voterpipe.tasks.maintenance import retract_snapshot
    from voterpipe.warehouse import SnapshotNotPublished

    try:
        report = retract_snapshot(args.state.lower(), args.snapshot)
    except SnapshotNotPublished as exc:
        print(f"retract refused: {exc}", file=sys.stderr)
        return 3
    rows = ", ".join(f"{name} {n}" for name, n in report["rows_deleted"].items())
    print(f"retracted {report['state']} {report['snapshot']} from the {report['backend']} warehouse "
          f"(rows deleted: {rows}); current snapshot of {report['state']}: {report['current_before']} -> "
          f"{report['current_after'] or 'none'}; stages marked for rebuilding: "
          f"{', '.join(report['stages_marked']) or 'none'}")
    return 0


def rebuild(args) -> int:
    from voterpipe import catalog
    from voterpipe.tasks.maintenance import NoSuchSnapshot, rebuild_from

    try:
        catalog.stage(args.from_stage)
        stages = rebuild_from(args.state.lower(), args.snapshot, args.from_stage)
    except (KeyError, ValueError, NoSuchSnapshot) as exc:
        print(f"rebuild refused: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 3
    print(f"marked for rebuilding {args.state.lower()} {args.snapshot}: {', '.join(stages)}")
    return run_pipeline(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from voterpipe.ops.logs import configure_logging

    configure_logging()  # once: luigi adds no handler of its own, so no line is printed twice
    if args.data_root:
        os.environ[DATA_ROOT_ENV] = args.data_root

    if args.command == "synth":
        from voterpipe.synth import write_drop

        summary = write_drop(
            state=args.state, voters=args.voters, snapshot=args.snapshot, seed=args.seed,
            layout=args.layout, dirty_rate=args.dirty_rate, from_snapshot=args.from_snapshot,
            churn_rate=args.churn_rate,
        )
        print(summary)
        return 0
    if args.command == "tiger":
        from voterpipe.geocode.tiger import import_tiger_dir

        print(import_tiger_dir(args.dir))
        return 0
    if args.command == "geocoder":
        from voterpipe.geocode.service import serve_forever

        serve_forever(args.host, args.port)
        return 0
    if args.command == "run":
        return run_pipeline(args)
    if args.command == "retract":
        return retract(args)
    if args.command == "rebuild":
        return rebuild(args)
    if args.command == "docs":
        from voterpipe.warehouse.dictionary import main as write_dictionary

        return write_dictionary(["--out", args.out])
    if args.command in ("cron", "status"):
        from voterpipe.ops.commands import run_command

        return run_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
