"""What every benchmark shares: the machine description, peak RSS, and the results file."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as handle:
            info["mem_total_kb"] = int(handle.readline().split()[1])
    except OSError:
        pass
    return info


def peak_rss_mb_of_children() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_measured(argv: list[str], env: dict | None = None) -> dict:
    """Run a command in a fresh process; return wall seconds and that process's peak RSS (MB)."""
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv] if Path("/usr/bin/time").exists() else argv,
        env={**os.environ, **(env or {})}, capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    peak_mb = None
    if Path("/usr/bin/time").exists():
        peak_mb = int(proc.stderr.strip().splitlines()[-1]) / 1024
    return {"seconds": wall, "peak_rss_mb": peak_mb, "stdout": proc.stdout}


def record(name: str, results: dict) -> Path:
    """Write bench/results/<name>.json with the machine it ran on."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "ran_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    print(json.dumps(payload["results"], indent=2, sort_keys=True))
    return path
