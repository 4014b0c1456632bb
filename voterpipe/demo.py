"""`make demo`: synthesise a drop for the main shipped formats and run the whole pipeline on it.
`make demo-all` (`--all`): one drop of every layout in config/formats/, at a small voter count."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import date, timedelta

import luigi

from voterpipe.config import DATA_ROOT_ENV

# (state, layout, snapshot): older layouts get the snapshot dates they were current for.
DEMO_DROPS = [
    ("nc", "nc_current", date(2026, 11, 1)),
    ("nc", "nc_pre2022", date(2021, 11, 1)),
    ("oh", "oh_swvf", date(2026, 11, 1)),
    ("fl", "fl_extract", date(2026, 11, 1)),
    ("mi", "mi_csv", date(2026, 11, 1)),
    ("mi", "mi_fixed", date(2020, 11, 1)),
    ("wa", "wa_vrdb", date(2026, 11, 1)),
]
NEXT_NC_SNAPSHOT = date(2026, 11, 8)
ALL_LAYOUTS_SNAPSHOT = date(2026, 11, 1)


def all_layout_drops(layouts: dict | None = None) -> list[tuple[str, str, date]]:
    """DEMO_DROPS plus one drop of every other layout; a state's drops get distinct snapshot
    dates (one raw directory per state and date), a week apart from 2026-11-01 on: not earlier,
    as nc_vr_snapshot's synthetic rows carry snapshot_dt 2026-11-01 and load only on or after it."""
    if layouts is None:
        from voterpipe import config
        from voterpipe.formats.layouts import load_layouts

        layouts = load_layouts(config.formats_dirs())
    drops = list(DEMO_DROPS)
    shown = {layout for _, layout, _ in drops}
    taken = {(state, snapshot) for state, _, snapshot in drops} | {("nc", NEXT_NC_SNAPSHOT)}
    for name in sorted(layouts):
        if name in shown:
            continue
        state, snapshot = layouts[name].state, ALL_LAYOUTS_SNAPSHOT
        while (state, snapshot) in taken:
            snapshot += timedelta(days=7)
        taken.add((state, snapshot))
        drops.append((state, name, snapshot))
    return drops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=os.environ.get(DATA_ROOT_ENV, "data"))
    parser.add_argument("--all", action="store_true",
                        help="one drop of every layout in config/formats/ (use a small --voters)")
    parser.add_argument("--voters", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ[DATA_ROOT_ENV] = os.path.abspath(args.data_root)
    from voterpipe.ops.logs import configure_logging

    configure_logging(logging.WARNING)  # once: luigi adds no handler of its own (no doubled lines)

    from voterpipe import catalog, storage, synth
    from voterpipe.geocode.tiger import import_tiger_dir
    from voterpipe.tasks import EnrichSnapshot
    from voterpipe.tasks.outcome import run_outcome

    started = time.perf_counter()
    drops = all_layout_drops() if args.all else DEMO_DROPS
    for state, layout, snapshot in drops:
        if not any(storage.raw_dir(state, snapshot).glob("*")):
            synth.write_drop(state=state, voters=args.voters, snapshot=snapshot, seed=1, layout=layout)
        _mark_complete(state, snapshot, layout)
    if not any(storage.raw_dir("nc", NEXT_NC_SNAPSHOT).glob("*")):
        synth.write_drop(state="nc", voters=args.voters, snapshot=NEXT_NC_SNAPSHOT, seed=1,
                         from_snapshot=date(2026, 11, 1))
    _mark_complete("nc", NEXT_NC_SNAPSHOT, "nc_current")
    tiger_root = storage.cache_dir("synth")
    for state in sorted({s for s, _, _ in drops}):
        import_tiger_dir(tiger_root / state / "tiger")

    runs = [(s, d) for s, _, d in drops] + [("nc", NEXT_NC_SNAPSHOT)]
    result = luigi.build([EnrichSnapshot(state=s, snapshot=d) for s, d in runs],
                         local_scheduler=True, workers=args.workers, detailed_summary=True)
    print(result.summary_text)
    outcome = run_outcome(result)
    for message in outcome.messages:
        print(message)
    ok = outcome.code == 0
    print(f"demo {'finished' if ok else 'FAILED'} in {time.perf_counter() - started:.1f} s; "
          f"data root: {os.environ[DATA_ROOT_ENV]}")
    if ok:
        for state, snapshot in runs:
            print(f"  report: {catalog.dataset_path('report', state, snapshot)}")
            print(f"  voter file: {catalog.dataset_path('voters_enriched', state, snapshot)}")
        print("  warehouse (DuckDB): "
              f"{storage.data_root() / 'warehouse.duckdb'}  -- try: make query")
    return 0 if ok else 1


def _mark_complete(state: str, snapshot: date, layout: str) -> None:
    """Demo drops written before drops carried a _READY marker get one (synth writes it now; a
    [drop] marker of another name is written here too)."""
    from voterpipe import config, storage
    from voterpipe.formats.drops import write_marker
    from voterpipe.formats.layouts import load_layouts

    directory = storage.raw_dir(state, snapshot)
    marker = config.state_values("drop", state)["marker"]
    if directory.is_dir() and not (directory / marker).exists():
        write_marker(directory, load_layouts(config.formats_dirs())[layout], marker)


if __name__ == "__main__":
    sys.exit(main())
