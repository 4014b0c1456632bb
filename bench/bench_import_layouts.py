"""Import speed of every layout in config/formats/: one synthetic drop per layout, against nc_current.

Each drop (BENCH_LAYOUT_VOTERS voters, default 100,000) is imported with import_drop in a fresh
process. The baseline is nc_current measured in the same run; target: every layout's rows/s
within 20% of nc_current's (ratio >= 0.8). Rows are the canonical rows written (voters + history):
lines read would undercount layouts that carry history as columns of the voter file (OH, NY, PA,
UT, VT). Voters/s and raw MB/s are recorded too, with their ratios.
BENCH_LAYOUTS=a,b limits the run to those layouts (nc_current is always measured). NC's voter file
alone (its drop without the history file) is measured too: layouts without history (one row per
voter, e.g. nc_vr_snapshot) get their rows/s ratio against it as well.
The machine is shared, so nc_current is measured first and again last; the faster of the two is
the baseline (both are recorded). For the same reason each drop is imported BENCH_LAYOUT_REPEATS
times (default 3), each in a fresh process, and the fastest import counts (all times are recorded);
after each of those imports nc_current's drop is imported again, and the layout's rows/s against the
fastest of these paired imports (ratio_rows_per_second_to_nc_paired) is what a busy machine cannot skew.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.bench_import import CHUNK_ROWS
from bench.common import record, run_measured

VOTERS = int(os.environ.get("BENCH_LAYOUT_VOTERS", "100000"))
REPEATS = max(1, int(os.environ.get("BENCH_LAYOUT_REPEATS", "3")))
BASELINE = "nc_current"
TARGET_RATIO = 0.8

IMPORT_SCRIPT = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from voterpipe.catalog import stage
from voterpipe.formats.importer import import_drop
raw, out, state, snapshot, chunk_rows = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
out.mkdir(parents=True, exist_ok=True)
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, cpu_start = time.perf_counter(), cpu()
manifest = import_drop(raw, stage("canonical").files_in(out), state, date.fromisoformat(snapshot), chunk_rows=int(chunk_rows))
print(json.dumps({"seconds_inside": time.perf_counter() - start, "cpu_seconds": cpu() - cpu_start,
                  "layout": manifest["layout"], "totals": manifest["totals"]}))
"""


def _write(state: str, layout: str, snapshot, work: Path, voter_file_only: bool = False) -> tuple[Path, Path]:
    """(root, raw directory) of a synthetic drop of the layout; without its history files if `voter_file_only`."""
    from voterpipe import storage
    from voterpipe.formats.importer import plan_drop
    from voterpipe.synth import write_drop

    root = work / (layout + ("_voter_file" if voter_file_only else ""))
    write_drop(state, VOTERS, snapshot, seed=1, layout=layout, dirty_rate=0.001, root=root)
    raw = storage.raw_dir(state, snapshot, root)
    if voter_file_only:
        for detected in plan_drop(raw, state).files:
            if detected.role == "history":
                detected.path.unlink()
    return root, raw


def _import(raw: Path, state: str, layout: str, snapshot, work: Path) -> tuple[dict, dict]:
    ours = run_measured([sys.executable, "-c", IMPORT_SCRIPT, str(raw), str(work / f"out_{layout}"),
                         state, snapshot.isoformat(), str(CHUNK_ROWS)])
    inside = json.loads(ours["stdout"].strip().splitlines()[-1])
    if inside["layout"] != layout:  # the drop must be read as the layout it was written in
        raise RuntimeError(f"{layout} drop was imported as {inside['layout']}")
    shutil.rmtree(work / f"out_{layout}", ignore_errors=True)
    return ours, inside


def _measure(state: str, layout: str, snapshot, work: Path, voter_file_only: bool = False,
             paired: tuple | None = None) -> dict:
    """The fastest of REPEATS imports of the layout's drop. With `paired` (the baseline's raw
    directory, state, layout, snapshot), the baseline is imported right after each of them and the
    layout's rows/s is also given against the fastest of those paired imports."""
    root, raw = _write(state, layout, snapshot, work, voter_file_only)
    raw_bytes = sum(f.stat().st_size for f in raw.rglob("*") if f.is_file())
    imports, paired_imports = [], []
    for _ in range(REPEATS):
        imports.append(_import(raw, state, layout, snapshot, work))
        if paired is not None:
            paired_imports.append(_import(paired[0], *paired[1:], work)[1])
    shutil.rmtree(root, ignore_errors=True)
    ours, inside = min(imports, key=lambda pair: pair[1]["seconds_inside"])
    totals = inside["totals"]
    rows = totals["voters_loaded"] + totals["history_loaded"]
    run = {
        "state": state,
        "snapshot": snapshot.isoformat(),
        "rows": rows,
        "lines_read": totals["rows_read"],
        "voters_loaded": totals["voters_loaded"],
        "history_loaded": totals["history_loaded"],
        "raw_bytes": raw_bytes,
        "wall_seconds": round(ours["seconds"], 2),
        "seconds_inside": round(inside["seconds_inside"], 2),
        "seconds_inside_all": [round(i["seconds_inside"], 2) for _, i in imports],
        "raw_bytes_per_row": round(raw_bytes / rows),
        "rows_per_second": round(rows / inside["seconds_inside"]),
        "raw_mb_per_second": round(raw_bytes / 1e6 / inside["seconds_inside"], 1),
        "voters_per_second": round(totals["voters_loaded"] / inside["seconds_inside"]),
        "cpu_seconds": round(inside["cpu_seconds"], 2),
        "rows_per_cpu_second": round(rows / inside["cpu_seconds"]),
        "peak_rss_mb": ours["peak_rss_mb"],
    }
    if paired_imports:
        fastest = min(paired_imports, key=lambda i: i["seconds_inside"])
        paired_rows = fastest["totals"]["voters_loaded"] + fastest["totals"]["history_loaded"]
        run["paired_baseline_seconds_inside_all"] = [round(i["seconds_inside"], 2) for i in paired_imports]
        run["ratio_rows_per_second_to_nc_paired"] = round(
            run["rows_per_second"] / (paired_rows / fastest["seconds_inside"]), 3)
    return run


def _with_ratios(runs: dict[str, dict]) -> dict[str, dict]:
    base = runs[BASELINE]
    for run in runs.values():
        run["ratio_rows_per_second_to_nc"] = round(run["rows_per_second"] / base["rows_per_second"], 3)
        run["ratio_rows_per_cpu_second_to_nc"] = round(run["rows_per_cpu_second"] / base["rows_per_cpu_second"], 3)
        run["ratio_voters_per_second_to_nc"] = round(run["voters_per_second"] / base["voters_per_second"], 3)
        run["ratio_raw_mb_per_second_to_nc"] = round(run["raw_mb_per_second"] / base["raw_mb_per_second"], 3)
        run["within_target"] = run["ratio_rows_per_second_to_nc"] >= TARGET_RATIO
    return runs


def _print_table(runs: dict[str, dict]) -> None:
    print(f"{'layout':16} {'rows':>8} {'rows/s':>8} {'ratio':>6} {'cpu ratio':>9} {'voters/s':>8} {'ratio':>6} "
          f"{'MB/s':>6} {'ratio':>6} {'paired':>6}  ok")
    for name, run in runs.items():
        print(f"{name:16} {run['rows']:>8} {run['rows_per_second']:>8} {run['ratio_rows_per_second_to_nc']:>6} "
              f"{run['ratio_rows_per_cpu_second_to_nc']:>9} {run['voters_per_second']:>8} "
              f"{run['ratio_voters_per_second_to_nc']:>6} {run['raw_mb_per_second']:>6} "
              f"{run['ratio_raw_mb_per_second_to_nc']:>6} {run.get('ratio_rows_per_second_to_nc_paired', ''):>6}  "
              f"{'yes' if run['within_target'] else 'NO'}", flush=True)


def main() -> None:
    from voterpipe.demo import all_layout_drops

    wanted = {n for n in os.environ.get("BENCH_LAYOUTS", "").split(",") if n}
    drops = [d for d in all_layout_drops() if not wanted or d[1] in wanted or d[1] == BASELINE]
    work = Path(tempfile.mkdtemp(prefix="bench_import_layouts_"))
    try:
        baseline_drop = next(d for d in drops if d[1] == BASELINE)
        paired = (_write(*baseline_drop, work / "paired")[1], *baseline_drop)
        runs = {}
        for state, layout, snapshot in drops:
            print(f"--- {layout}", flush=True)
            runs[layout] = _measure(state, layout, snapshot, work, paired=paired)
        print(f"--- {BASELINE} again", flush=True)
        again = _measure(*baseline_drop, work)
        print(f"--- {BASELINE}, voter file only", flush=True)
        voter_file_only = _measure(*baseline_drop, work, voter_file_only=True, paired=paired)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    baseline_runs = [runs[BASELINE], again]
    runs[BASELINE] = max(baseline_runs, key=lambda run: run["rows_per_second"])
    runs = _with_ratios(runs)
    for run in runs.values():  # a layout without history compares fairly with NC's voter file alone
        if run["history_loaded"] == 0:
            run["ratio_rows_per_second_to_nc_voter_file_only"] = round(
                run["rows_per_second"] / voter_file_only["rows_per_second"], 3)
            run["ratio_rows_per_second_to_nc_voter_file_only_paired"] = round(
                run["ratio_rows_per_second_to_nc_paired"] / voter_file_only["ratio_rows_per_second_to_nc_paired"], 3)
    _print_table(runs)
    print(f"NC voter file only: {voter_file_only['rows_per_second']} rows/s; layouts without history against it: "
          + ", ".join(f"{name} {run['ratio_rows_per_second_to_nc_voter_file_only']}" for name, run in runs.items()
                      if "ratio_rows_per_second_to_nc_voter_file_only" in run))
    results = {"voters_per_drop": VOTERS, "chunk_rows": CHUNK_ROWS, "repeats": REPEATS, "baseline": BASELINE,
               "target_min_ratio_to_baseline": TARGET_RATIO, "runs": runs,
               "baseline_rows_per_second_first_and_last": [r["rows_per_second"] for r in baseline_runs],
               "baseline_voter_file_only": voter_file_only,
               "below_target": sorted(n for n, r in runs.items() if not r["within_target"]),
               "below_target_paired": sorted(n for n, r in runs.items()
                                             if r.get("ratio_rows_per_second_to_nc_paired", 1) < TARGET_RATIO),
               "load_average_at_end": os.getloadavg()}
    record("import_layouts", results)


if __name__ == "__main__":
    main()
