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

    run = commands.add_parser("run", help="run the pipeline for one snapshot")
    run.add_argument("--state", required=True)
    run.add_argument("--snapshot", type=_iso_date, required=True)
    run.add_argument("--task", default="EnrichSnapshot", help="the last task to run")
    run.add_argument("--workers", type=int, default=1)
    run.add_argument("--local-scheduler", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.data_root:
        os.environ[DATA_ROOT_ENV] = args.data_root

    if args.command == "synth":
        from voterpipe.synth import write_drop

        summary = write_drop(
            state=args.state, voters=args.voters, snapshot=args.snapshot, seed=args.seed,
            layout=args.layout, dirty_rate=args.dirty_rate, from_snapshot=args.from_snapshot,
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
        import luigi

        import voterpipe.tasks as tasks

        task_class = getattr(tasks, args.task)
        result = luigi.build(
            [task_class(state=args.state, snapshot=args.snapshot)],
            workers=args.workers, local_scheduler=args.local_scheduler, detailed_summary=True,
        )
        print(result.summary_text)
        return 0 if result.scheduling_succeeded and "FAILED" not in str(result.status) else 30
    return 2


if __name__ == "__main__":
    sys.exit(main())
