"""Benchmark: a 1 M-voter NC drop (`voterpipe synth`), against a 100 k baseline in the same run.

The first 1 M run also writes the TIGER files (H4's writer); the second, with the same network,
skips them, so the difference is the TIGER cost and the second run is the generator alone.
"""

from __future__ import annotations

import ast
import sys
import tempfile

from bench.common import record, run_measured

SNAPSHOT = "2026-11-01"


def _synth(root: str, voters: int) -> dict:
    argv = [sys.executable, "-m", "voterpipe.cli", "--data-root", root, "synth", "--state", "nc",
            "--voters", str(voters), "--snapshot", SNAPSHOT, "--seed", "1"]
    measured = run_measured(argv)
    summary = ast.literal_eval(measured.pop("stdout").strip().splitlines()[-1])
    return {**measured, "voters": summary["voters"], "history_rows": summary["history_rows"],
            "bytes": sum(f["bytes"] for f in summary["files"]), "tiger": summary["tiger"].split(":")[0],
            "phase_seconds": summary["seconds"]}


def main() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as root:
        _synth(f"{root}/small", 100_000)  # writes the small network's TIGER files
        baseline = _synth(f"{root}/small", 100_000)
        cold = _synth(f"{root}/big", 1_000_000)
        warm = _synth(f"{root}/big", 1_000_000)
    results = {
        "baseline_100k": baseline,
        "nc_1m_with_tiger": cold,
        "nc_1m_generator_only": warm,
        "tiger_seconds": cold["seconds"] - warm["seconds"],
        "ratio_1m_to_100k": warm["seconds"] / baseline["seconds"],
        "voters_per_second": warm["voters"] / warm["seconds"],
        "under_60s": warm["seconds"] < 60,
    }
    record("synth", results)
    return results


if __name__ == "__main__":
    main()
