"""The whole pipeline measured from outside (`make bench-e2e`): synthetic NC drops of 100k and 1M
voters (4M with BENCH_FULL=1; BENCH_E2E_SIZES=100000 picks sizes), the offline geocoder.

For each size: a cold run into DuckDB (with 1 and with 2 Luigi workers) and one into PostgreSQL
(each one `voterpipe run` process),
a no-op rerun, the next snapshot (`voterpipe synth --from-snapshot`, its churn recorded), and
every stage in a process of its own (`voterpipe run --task <stage>` on a fresh copy, upstream
already built), so each peak RSS belongs to one stage. Wall time is the process's; a stage's own
time comes from its log lines ("running" to "done"). At 100k, bench/naive.py (read_csv, usaddress
per row, groupbys, to_sql) runs in the same benchmark run, and our speed is given as its ratio to
ours, stage by stage (against the PostgreSQL run) and in total. The PostgreSQL run's voters_enriched
publish rate is given as a fraction of the server-only rate on the same voter file (measured as
bench/bench_warehouse.py does). The next drop changes 2 % of the roll (BENCH_E2E_CHURN).

Results: bench/results/e2e-<date>.json. Run: `.venv/bin/python -m bench.bench_e2e`.
`BENCH_E2E_STAGES_ONLY=1 BENCH_E2E_SIZES=1000000,4000000` runs only the per-stage series and gives
each stage's peak RSS growth from the smallest to the largest size (bench/results/e2e-stages-<date>.json).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

import pg_server  # noqa: E402

from bench import bench_warehouse  # noqa: E402
from bench.common import record  # noqa: E402
from voterpipe import catalog  # noqa: E402

FIRST, SECOND = date(2026, 11, 1), date(2026, 11, 8)
FULL = os.environ.get("BENCH_FULL") == "1"
SIZES = [int(s) for s in os.environ.get(
    "BENCH_E2E_SIZES", "100000,1000000" + (",4000000" if FULL else "")).split(",")]
NAIVE_VOTERS = 100_000
CHURN_RATE = float(os.environ.get("BENCH_E2E_CHURN", "0.02"))  # share of the roll the next drop changes
STAGE_TASKS = ["ImportSnapshot", "NormaliseAddresses", "GeocodeAddresses", "BuildHouseholds",
               "AnalyseCohorts", "BuildVoterFile", "ReportSnapshot", "PublishSnapshot"]
# BENCH_E2E_STAGES picks the per-stage series' stages, in order (e.g. those before BuildVoterFile).
SERIES_TASKS = os.environ.get("BENCH_E2E_STAGES", ",".join(STAGE_TASKS)).split(",")
NAIVE_STAGES = {"read_csv": "ImportSnapshot", "usaddress_apply": "NormaliseAddresses",
                "households_groupby": "BuildHouseholds", "turnout_groupby": "AnalyseCohorts",
                "to_sql": "PublishSnapshot"}
TARGETS = {"cold_1m_seconds": 45.0, "cold_1m_seconds_2_workers": 45.0, "stage_peak_rss_mb": 1536.0,
           "rss_4m_over_1m": 1.3,
           "noop_seconds": 2.0, "churn_over_cold": 0.35, "naive_ratio": 20.0, "pg_publish_fraction": 0.85}
PG_STAGED = re.compile(r"warehouse postgres \S+ \S+: voters_enriched staged (\d+) rows over (\d+) "
                       r"connection\(s\) in ([\d.]+)s")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*\b(running|done)\s+(\w+)\(")


def measured(argv: list[str], env: dict | None = None) -> dict:
    """Run a command in a fresh process: wall seconds, its peak RSS (MB), each task's own seconds."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "peak_rss_kb=%M", *argv], cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[3:]} exited {done.returncode}:\n{done.stderr[-3000:]}")
    peak = re.findall(r"peak_rss_kb=(\d+)", done.stderr)
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(int(peak[-1]) / 1024, 1) if peak else None,
            "task_seconds": task_seconds(done.stderr), "stdout": done.stdout, "stderr": done.stderr}


def task_seconds(log: str) -> dict[str, float]:
    started, spent = {}, {}
    for line in log.splitlines():
        found = LOG_LINE.match(line)
        if not found:
            continue
        when = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if found.group(2) == "running":
            started[found.group(3)] = when
        elif found.group(3) in started:
            spent[found.group(3)] = round((when - started[found.group(3)]).total_seconds(), 2)
    return spent


def voterpipe(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "voterpipe.cli", "--data-root", str(root), *args]


def run_args(root: Path, snapshot: date, task: str = "EnrichSnapshot", workers: int = 1) -> list[str]:
    return voterpipe(root, "run", "--state", "nc", "--snapshot", snapshot.isoformat(), "--local-scheduler",
                     "--task", task, "--workers", str(workers))


def without_stdout(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in ("stdout", "stderr")}


def prepare_drop(root: Path, voters: int) -> dict:
    synth = measured(voterpipe(root, "synth", "--state", "nc", "--voters", str(voters), "--snapshot",
                               FIRST.isoformat(), "--seed", "1"))
    measured(voterpipe(root, "tiger", "import", "--dir", str(root / "cache" / "synth" / "nc" / "tiger")))
    return {"synth_seconds": synth["seconds"]}


def fresh_copy(base: Path, name: str) -> Path:
    target = base.parent / name / "data"
    shutil.rmtree(target.parent, ignore_errors=True)
    shutil.copytree(base, target)
    return target


def postgres_env(directory: Path, dsn: str, schema: str) -> dict:
    config = directory / "e2e-luigi.cfg"
    config.write_text(f"[warehouse]\nbackend = postgres\nschema = {schema}\n")
    return {"LUIGI_CONFIG_PATH": str(config), "VOTERPIPE_PG_DSN": dsn}


def churn_of(root: Path) -> dict:
    summary = measured(voterpipe(root, "synth", "--state", "nc", "--voters", "0", "--snapshot",
                                 SECOND.isoformat(), "--seed", "1", "--from-snapshot", FIRST.isoformat(),
                                 "--churn-rate", str(CHURN_RATE)))
    text = summary["stdout"].strip().splitlines()[-1]
    import ast

    return ast.literal_eval(text).get("churn", {})


def scale_point(base: Path, voters: int, dsn: str | None) -> dict:
    """Cold (DuckDB, PostgreSQL), no-op, next snapshot and per-stage runs on one drop size."""
    point = {"voters": voters, **prepare_drop(base, voters)}
    cold_root = fresh_copy(base, "cold-duckdb")
    point["cold_duckdb"] = without_stdout(measured(run_args(cold_root, FIRST)))
    point["noop_rerun"] = without_stdout(measured(run_args(cold_root, FIRST)))
    point["churn"] = churn_of(cold_root)
    point["next_snapshot"] = without_stdout(measured(run_args(cold_root, SECOND)))
    point["next_over_cold"] = round(point["next_snapshot"]["seconds"] / point["cold_duckdb"]["seconds"], 3)
    shutil.rmtree(cold_root.parent)
    # two Luigi workers: the report runs beside the voter file and its publish (the DAG's one fork)
    two_root = fresh_copy(base, "cold-duckdb-2-workers")
    point["cold_duckdb_2_workers"] = without_stdout(measured(run_args(two_root, FIRST, workers=2)))
    shutil.rmtree(two_root.parent)

    point.update(stage_series(base, voters))

    if dsn:
        pg_root = fresh_copy(base, "cold-postgres")
        env = postgres_env(pg_root.parent, dsn, f"e2e_{voters}")
        cold_postgres = measured(run_args(pg_root, FIRST), env)
        point["cold_postgres"] = without_stdout(cold_postgres)
        point["postgres_publish_fraction"] = publish_fraction(cold_postgres["stderr"], pg_root, dsn)
        shutil.rmtree(pg_root.parent)
    return point


def stage_series(base: Path, voters: int) -> dict:
    """Every stage in a process of its own on a fresh copy (upstream built by the stage before)."""
    stage_root = fresh_copy(base, "stages")
    stages = {}
    for task in SERIES_TASKS:
        result = without_stdout(measured(run_args(stage_root, FIRST, task)))
        own = result["task_seconds"].get(task)
        stages[task] = {"process_seconds": result["seconds"], "stage_seconds": own,
                        "peak_rss_mb": result["peak_rss_mb"],
                        "voters_per_second": round(voters / own) if own else None}
    shutil.rmtree(stage_root.parent)
    return {"stages": stages, "max_stage_peak_rss_mb": max(s["peak_rss_mb"] or 0 for s in stages.values())}


def main_stages_only() -> dict:
    """BENCH_E2E_STAGES_ONLY=1: only the per-stage series (peak RSS growth, e.g. sizes 1M and 4M)."""
    points = {}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-stages-") as work:
        for voters in SIZES:
            base = Path(work) / f"nc-{voters}" / "seed" / "data"
            base.mkdir(parents=True)
            points[voters] = {"voters": voters, **prepare_drop(base, voters), **stage_series(base, voters)}
            print(f"e2e stages {voters} voters: {json.dumps(points[voters])}", flush=True)
            shutil.rmtree(base.parents[1])
    by_stage = {task: round(points[max(SIZES)]["stages"][task]["peak_rss_mb"]
                            / points[min(SIZES)]["stages"][task]["peak_rss_mb"], 2) for task in SERIES_TASKS}
    growth = round(points[max(SIZES)]["max_stage_peak_rss_mb"] / points[min(SIZES)]["max_stage_peak_rss_mb"], 2)
    results = {"sizes": SIZES, "load_average": [round(x, 2) for x in os.getloadavg()],
               "points": {str(v): p for v, p in points.items()},
               "peak_rss_growth_by_stage": by_stage,
               "targets": {"rss_largest_over_smallest": {"target": TARGETS["rss_4m_over_1m"], "measured": growth,
                                                         "met": growth <= TARGETS["rss_4m_over_1m"]}}}
    record(f"e2e-stages-{date.today().isoformat()}", results)
    return results


def publish_fraction(log: str, root: Path, dsn: str) -> dict | None:
    """PublishSnapshot's voters_enriched rate in the PostgreSQL run (its log line) as a fraction of
    the server-only rate on the same voter file over as many connections (bench_warehouse's
    measurement: rows COPYed from bytes encoded beforehand, then the same indexes)."""
    found = PG_STAGED.search(log)
    if not found:
        return None
    rows, connections, seconds = int(found.group(1)), int(found.group(2)), float(found.group(3))
    voter_file = catalog.dataset_path("voters_enriched", "nc", FIRST, root)
    server = bench_warehouse._postgres_server_share(dsn, voter_file, parts=connections)
    rate = rows / seconds
    fraction = round(rate / server["rows_per_s"], 2)
    return {"publish_rows_per_s": round(rate), "publish_seconds": seconds, "connections": connections,
            "server_only": server, "fraction": fraction, "target": TARGETS["pg_publish_fraction"],
            "met": fraction >= TARGETS["pg_publish_fraction"],
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def naive_point(base: Path, dsn: str, ours: dict) -> dict:
    """bench/naive.py on the same drop, and our speed as a ratio to it (naive seconds / ours)."""
    result = measured([sys.executable, "-m", "bench.naive", "--drop", str(base / "01_raw" / "nc" / FIRST.isoformat()),
                       "--schema", "naive"], {"VOTERPIPE_PG_DSN": dsn})
    naive = json.loads(result["stdout"].strip().splitlines()[-1])
    own = ours["task_seconds"]
    ratios = {name: round(seconds / own[task], 2) for name, task in NAIVE_STAGES.items()
              if (seconds := naive["seconds"][name]) and own.get(task)}
    matching = sum(own.get(task, 0) for task in NAIVE_STAGES.values())
    return {"naive": naive, "naive_process_seconds": result["seconds"], "naive_peak_rss_mb": result["peak_rss_mb"],
            "ratio_by_stage": ratios,
            "ratio_total_vs_same_stages": round(naive["seconds"]["total"] / matching, 1) if matching else None,
            "ratio_total_vs_whole_cold_run": round(naive["seconds"]["total"] / ours["seconds"], 1)}


def verdicts(points: dict[int, dict], naive: dict | None) -> dict:
    """Every target of issue 17 with its measured value (None: not measured in this run)."""
    one_m, four_m = points.get(1_000_000), points.get(4_000_000)
    measured_rss = [p["max_stage_peak_rss_mb"] for p in points.values()]
    rss_growth = (round(four_m["max_stage_peak_rss_mb"] / one_m["max_stage_peak_rss_mb"], 2)
                  if one_m and four_m else None)
    values = {
        "cold_1m_seconds": one_m["cold_duckdb"]["seconds"] if one_m else None,
        "cold_1m_seconds_2_workers": one_m["cold_duckdb_2_workers"]["seconds"] if one_m else None,
        "stage_peak_rss_mb": max(measured_rss) if measured_rss else None,
        "rss_4m_over_1m": rss_growth,
        "noop_seconds": max(p["noop_rerun"]["seconds"] for p in points.values()),
        "churn_over_cold": max(p["next_over_cold"] for p in points.values()),
        "naive_ratio": naive.get("ratio_total_vs_whole_cold_run") if naive else None,
        "pg_publish_fraction": (one_m or {}).get("postgres_publish_fraction", {}).get("fraction")
        if (one_m or {}).get("postgres_publish_fraction") else None,
    }
    at_least = {"naive_ratio", "pg_publish_fraction"}
    return {name: {"target": TARGETS[name], "measured": value,
                   "met": None if value is None else (value >= TARGETS[name] if name in at_least
                                                      else value <= TARGETS[name])}
            for name, value in values.items()}


def main() -> dict:
    try:
        server = pg_server.start_server()
        dsn, pg_note = server.dsn, None
    except pg_server.PostgresUnavailable as exc:
        server, dsn, pg_note = None, None, str(exc)
    points, naive = {}, None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as work:
            for voters in SIZES:
                base = Path(work) / f"nc-{voters}" / "seed" / "data"
                base.mkdir(parents=True)
                points[voters] = scale_point(base, voters, dsn)
                print(f"e2e {voters} voters: {json.dumps(points[voters])}", flush=True)
                if voters == NAIVE_VOTERS and dsn:
                    try:
                        naive = naive_point(base, dsn, points[voters]["cold_postgres"])
                    except RuntimeError as exc:  # keep the numbers measured so far
                        naive = {"error": str(exc)[-2000:]}
                shutil.rmtree(base.parents[1])
    finally:
        if server is not None:
            server.stop()
    results = {"sizes": SIZES, "load_average": [round(x, 2) for x in os.getloadavg()],
               "postgres": pg_note or "throwaway server (tests/pg_server.py)",
               "points": {str(v): p for v, p in points.items()}, "naive_100k": naive,
               "targets": verdicts(points, naive)}
    record(f"e2e-{date.today().isoformat()}", results)
    return results


if __name__ == "__main__":
    main_stages_only() if os.environ.get("BENCH_E2E_STAGES_ONLY") == "1" else main()
