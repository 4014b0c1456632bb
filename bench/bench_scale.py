"""Scale out on one 2-core machine (issue 18): the whole pipeline for two states of N/2 voters each
(N = 4M by default; BENCH_SCALE_VOTERS=1000000 for a quicker run), through a real luigid with 1
and then 2 `luigi` worker processes, [scale] partitions = 2 (BENCH_SCALE_PARTITIONS), the
warehouse on a throwaway PostgreSQL. The same 2-worker run is repeated with the data root on a
moto S3 server on 127.0.0.1 instead of the local disk: its ratio is the object-store round trip
(upload of outputs, download of inputs into each worker's scratch copy, manifest reads).

Measured in one benchmark run, against its own 1-worker local baseline: wall seconds from the
workers' start until luigid has the top task DONE, voters/s, each stage's summed task seconds (the
"stage ... done in Ns" lines of the workers' logs) and the stage tasks each worker ran.

Results: bench/results/scale.json (another size: scale-<k voters>k.json).
Run: `.venv/bin/python -m bench.bench_scale` (part of `make bench`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

import luigid_cluster  # noqa: E402
import pg_server  # noqa: E402
import s3_server  # noqa: E402

from bench.common import record  # noqa: E402

DEFAULT_VOTERS = 4_000_000
VOTERS = int(os.environ.get("BENCH_SCALE_VOTERS", DEFAULT_VOTERS))
PARTITIONS = int(os.environ.get("BENCH_SCALE_PARTITIONS", "2"))
STATES = {"nc": 1, "oh": 2}  # state -> synthetic seed; each gets VOTERS / 2
SNAPSHOT = date(2026, 11, 1)
TOP = ["EnrichStates", "--states", ",".join(STATES)]
SEEDED = ("01_raw", "cache/tiger")
RUN_TIMEOUT = 4 * 3600
STAGE_DONE = re.compile(r"stage (\S+) \w+ \S+ done in ([\d.]+)s")


def build_seed(root: Path) -> dict:
    """The raw drops and TIGER data every variant starts from; returns how long that took."""
    from stage_fixtures import data_root_env

    from voterpipe import storage, synth
    from voterpipe.geocode.tiger import import_tiger_dir

    started = time.perf_counter()
    root.mkdir(parents=True)
    with data_root_env(root):
        for state, seed in STATES.items():
            synth.write_drop(state=state, voters=VOTERS // len(STATES), snapshot=SNAPSHOT, seed=seed)
            import_tiger_dir(storage.cache_dir("synth") / state / "tiger")
    raw_mb = sum(p.stat().st_size for p in (root / "01_raw").rglob("*") if p.is_file()) / 1e6
    return {"synth_seconds": round(time.perf_counter() - started, 1), "raw_mb": round(raw_mb, 1)}


def upload_seed(seed: Path, server: s3_server.S3Server) -> tuple[str, float]:
    """A fresh bucket holding the seed's drops and TIGER data: (data root URL, upload seconds)."""
    started = time.perf_counter()
    bucket = server.create_bucket(f"bench-scale-{os.getpid()}")
    client = server.client()
    for part in SEEDED:
        # each drop's _READY marker last, as a sender writes it: a file newer than the marker must settle
        for path in sorted((seed / part).rglob("*"), key=lambda p: (p.name == "_READY", str(p))):
            if path.is_file():
                client.upload_file(str(path), bucket, f"root/{path.relative_to(seed).as_posix()}")
    return f"s3://{bucket}/root", time.perf_counter() - started


def run_variant(work: Path, name: str, workers: int, env: dict[str, str]) -> dict:
    """EnrichStates through a fresh luigid with `workers` worker processes; wall time to DONE."""
    settings = {"scale": {"partitions": PARTITIONS}, "warehouse": {"backend": "postgres", "schema": name}}
    with luigid_cluster.Cluster(work / name) as cluster:
        started = time.perf_counter()
        cluster.start_workers(workers, TOP, env, settings=settings)
        outcome, codes = cluster.finish("EnrichStates", timeout=RUN_TIMEOUT)
        seconds = time.perf_counter() - started
        if outcome != "done":
            raise RuntimeError(f"{name}: the run ended {outcome} (exit codes {codes}):\n{cluster.logs()}")
        stage_seconds: dict[str, float] = defaultdict(float)
        per_worker = []
        for worker in cluster.workers:
            for stage, spent in STAGE_DONE.findall(worker.log()):
                stage_seconds[stage] += float(spent)
            per_worker.append(sum(event == "done" and not task.startswith("Enrich")
                                  for event, task in worker.events()))
        task_runs = Counter(task for w in cluster.workers for event, task in w.events() if event == "done")
        published = sum(task.startswith("PublishSnapshot(") for task in task_runs)
        if published != len(STATES):  # e.g. a drop taken as incomplete: the run would measure less work
            raise RuntimeError(f"{name}: {published} snapshots published, expected {len(STATES)}:\n{cluster.logs()}")
    print(f"{name}: {seconds:.1f}s", flush=True)
    return {"workers": workers, "seconds": round(seconds, 1), "voters_per_second": round(VOTERS / seconds),
            "stage_task_seconds": {k: round(v, 1) for k, v in sorted(stage_seconds.items())},
            "tasks_done_per_worker": per_worker, "tasks_done": sum(task_runs.values()),
            "tasks_done_twice": sum(n > 1 for n in task_runs.values())}


def stage_output_mb(root: Path) -> float:
    """What the stages wrote (02_canonical ... 07_reporting): what an s3:// root uploads once."""
    layers = [d for d in root.iterdir() if d.is_dir() and d.name[:2].isdigit() and d.name != "01_raw"]
    return round(sum(p.stat().st_size for d in layers for p in d.rglob("*") if p.is_file()) / 1e6, 1)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    pg = pg_server.start_server()
    s3 = s3_server.start_server()
    load_before = os.getloadavg()
    try:
        seed_info = build_seed(work / "seed")
        base_env = {"VOTERPIPE_PG_DSN": pg.dsn}
        runs = {}
        for workers in (1, 2):
            root = work / f"local{workers}-root"
            shutil.copytree(work / "seed", root)
            runs[f"local_{workers}_worker"] = run_variant(
                work, f"local_{workers}_worker", workers, {**base_env, "VOTERPIPE_DATA_ROOT": str(root)})
            runs[f"local_{workers}_worker"]["stage_output_mb"] = stage_output_mb(root)
            shutil.rmtree(root)
        url, upload_seconds = upload_seed(work / "seed", s3)
        runs["s3_2_worker"] = run_variant(work, "s3_2_worker", 2, {**base_env, **s3.env(url)})
    finally:
        s3.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    baseline = runs["local_1_worker"]["seconds"]
    record("scale" if VOTERS == DEFAULT_VOTERS else f"scale-{VOTERS // 1000}k", {
        "voters": VOTERS, "states": list(STATES), "voters_per_state": VOTERS // len(STATES),
        "partitions": PARTITIONS, "warehouse": "throwaway PostgreSQL (tests/pg_server.py)",
        "seed": {**seed_info, "s3_upload_seconds": round(upload_seconds, 1)},
        "runs": runs,
        "speedup_2_workers_vs_1": round(baseline / runs["local_2_worker"]["seconds"], 2),
        "s3_over_local_2_workers": round(runs["s3_2_worker"]["seconds"] / runs["local_2_worker"]["seconds"], 2),
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "command": f"BENCH_SCALE_VOTERS={VOTERS} .venv/bin/python -m bench.bench_scale",
    })


if __name__ == "__main__":
    main()
