"""How long deciding "nothing to do" takes for a built 1M-voter NC snapshot (target: under 2 s).

Measured in fresh processes, after a cold run of the whole pipeline:
- fingerprint check: complete() of every task EnrichSnapshot needs (upstream fingerprints, raw
  checksums reused from the manifest by size and mtime, config hashes, settings, rule versions);
- baseline, same run: the old rule, "each stage directory has a manifest";
- the same check after `touch` of the raw files (new mtimes, same bytes: every raw file re-hashed),
  which is what reusing size and mtime saves;
- a whole no-op `voterpipe run` (process start, imports, Luigi scheduling).

Run: .venv/bin/python -m bench.bench_completeness [voters]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.common import record, run_measured

SNAPSHOT = "2026-11-01"
CHECK_SCRIPT = """
import json, sys, time
from datetime import date
t0 = time.perf_counter()
import voterpipe.tasks as tasks
from voterpipe import catalog, storage
imported = time.perf_counter() - t0

def walk(task, seen):
    if task.task_id in seen:
        return
    seen[task.task_id] = task
    for dep in luigi.task.flatten(task.requires()):
        walk(dep, seen)

import luigi
root = tasks.EnrichSnapshot(state="nc", snapshot=date.fromisoformat(sys.argv[1]))
seen = {}
walk(root, seen)
start = time.perf_counter()
complete = all(task.complete() for task in seen.values())
fingerprint_seconds = time.perf_counter() - start
start = time.perf_counter()
published = all(storage.is_published(catalog.stage(n).directory("nc", sys.argv[1]))
                for n in catalog.STAGES if n != "raw")
manifest_seconds = time.perf_counter() - start
print(json.dumps({"tasks": len(seen), "complete": complete, "fingerprint_seconds": fingerprint_seconds,
                  "manifest_exists_seconds": manifest_seconds, "import_seconds": imported}))
"""


def _voterpipe(*args: str, env: dict) -> dict:
    return run_measured([sys.executable, "-m", "voterpipe.cli", *args], env=env)


def _check(env: dict) -> dict:
    out = run_measured([sys.executable, "-c", CHECK_SCRIPT, SNAPSHOT], env=env)
    return json.loads(out["stdout"].strip().splitlines()[-1]) | {"process_seconds": out["seconds"]}


def main() -> None:
    voters = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_COMPLETENESS_VOTERS", 1_000_000))
    root = Path(tempfile.mkdtemp(prefix="vp-complete-"))
    env = {"VOTERPIPE_DATA_ROOT": str(root)}
    try:
        synth = _voterpipe("synth", "--state", "nc", "--voters", str(voters), "--snapshot", SNAPSHOT, env=env)
        _voterpipe("tiger", "import", "--dir", str(root / "cache" / "synth" / "nc" / "tiger"), env=env)
        cold = _voterpipe("run", "--state", "nc", "--snapshot", SNAPSHOT, "--local-scheduler", env=env)
        checked = _check(env)
        noop = _voterpipe("run", "--state", "nc", "--snapshot", SNAPSHOT, "--local-scheduler", env=env)
        raw = root / "01_raw" / "nc" / SNAPSHOT
        raw_bytes = sum(p.stat().st_size for p in raw.iterdir() if p.is_file())
        for path in raw.iterdir():
            path.touch()
        touched = _check(env)
        results = {
            "voters": voters,
            "raw_drop_mb": round(raw_bytes / 1e6, 1),
            "synth_seconds": round(synth["seconds"], 2),
            "cold_run_seconds": round(cold["seconds"], 2),
            "tasks_checked": checked["tasks"],
            "all_complete": checked["complete"],
            "completeness_check_seconds": round(checked["fingerprint_seconds"], 3),
            "baseline_manifest_exists_seconds": round(checked["manifest_exists_seconds"], 4),
            "check_after_touch_seconds (raw re-hashed)": round(touched["fingerprint_seconds"], 3),
            "rerun_after_touch_complete": touched["complete"],
            "noop_run_process_seconds": round(noop["seconds"], 2),
            "target": "completeness check < 2 s",
            "met": checked["complete"] and checked["fingerprint_seconds"] < 2.0,
        }
        record("completeness", results)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
