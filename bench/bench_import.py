"""Streaming import speed and memory: synthetic NC drops of 1M and 4M voters, against pyarrow's CSV reader.

Each import runs in a fresh process (wall time, peak RSS). The reference is pyarrow.csv.read_csv
of the same files (all columns as strings), timed in the same run on the same machine.
Targets: >= 300,000 rows/s, peak RSS < 1.5 GB, the 4M run's RSS within +-20% of the 1M run's.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

from bench.common import record, run_measured

SNAPSHOT = date(2026, 11, 1)
SIZES = [int(s) for s in os.environ.get("BENCH_IMPORT_SIZES", "1000000,4000000").split(",")]
CHUNK_ROWS = 200_000

IMPORT_SCRIPT = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from voterpipe.catalog import stage
from voterpipe.formats.importer import import_drop
CANONICAL = stage("canonical")
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, cpu_start = time.perf_counter(), cpu()
manifest = import_drop(raw, CANONICAL.files_in(out), "nc", date.fromisoformat(sys.argv[3]), chunk_rows=int(sys.argv[4]))
print(json.dumps({"seconds_inside": time.perf_counter() - start, "cpu_seconds": cpu() - cpu_start,
                  "totals": manifest["totals"]}))
"""

PYARROW_SCRIPT = """
import json, resource, sys, time
import pyarrow as pa, pyarrow.csv as csv
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
rows, start, cpu_start = 0, time.perf_counter(), cpu()
for path in sys.argv[1:]:
    with open(path, "rb") as handle:
        names = handle.readline().decode("latin-1").rstrip("\\n").split("\\t")
    table = csv.read_csv(path, read_options=csv.ReadOptions(encoding="latin-1"),
                         parse_options=csv.ParseOptions(delimiter="\\t", quote_char=False, invalid_row_handler=lambda row: "skip"),
                         convert_options=csv.ConvertOptions(column_types={n: pa.string() for n in names}))
    rows += table.num_rows
    del table
print(json.dumps({"seconds_inside": time.perf_counter() - start, "cpu_seconds": cpu() - cpu_start, "rows": rows}))
"""


def _measure(size: int, work: Path) -> dict:
    from voterpipe import storage
    from voterpipe.synth import write_drop

    root = work / f"root_{size}"
    write_drop("nc", size, SNAPSHOT, seed=1, dirty_rate=0.001, root=root)
    raw = storage.raw_dir("nc", SNAPSHOT, root)
    files = [raw / "ncvoter_Statewide.txt", raw / "ncvhis_Statewide.txt"]
    raw_bytes = sum(f.stat().st_size for f in files)

    reference = run_measured([sys.executable, "-c", PYARROW_SCRIPT, *map(str, files)])
    ours = run_measured([sys.executable, "-c", IMPORT_SCRIPT, str(raw), str(work / f"out_{size}"),
                         SNAPSHOT.isoformat(), str(CHUNK_ROWS)])
    inside = json.loads(ours["stdout"].strip().splitlines()[-1])
    ref_inside = json.loads(reference["stdout"].strip().splitlines()[-1])
    rows = inside["totals"]["rows_read"]
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(work / f"out_{size}", ignore_errors=True)
    return {
        "voters": size,
        "rows_read": rows,
        "raw_bytes": raw_bytes,
        "import_wall_seconds": round(ours["seconds"], 2),
        "import_seconds_inside": round(inside["seconds_inside"], 2),
        "import_rows_per_second": round(rows / ours["seconds"]),
        "import_peak_rss_mb": ours["peak_rss_mb"],
        "pyarrow_read_csv_seconds_inside": round(ref_inside["seconds_inside"], 2),
        "pyarrow_rows_per_second": round(ref_inside["rows"] / ref_inside["seconds_inside"]),
        "pyarrow_peak_rss_mb": reference["peak_rss_mb"],
        "fraction_of_pyarrow_speed": round(ref_inside["seconds_inside"] / inside["seconds_inside"], 3),
        # The machine is shared: CPU seconds are steadier than wall time under other load.
        "import_cpu_seconds": round(inside["cpu_seconds"], 2),
        "import_rows_per_cpu_second": round(rows / inside["cpu_seconds"]),
        "pyarrow_cpu_seconds": round(ref_inside["cpu_seconds"], 2),
        "fraction_of_pyarrow_cpu_speed": round(ref_inside["cpu_seconds"] / inside["cpu_seconds"], 3),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench_import_"))
    try:
        runs = [_measure(size, work) for size in SIZES]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {"chunk_rows": CHUNK_ROWS, "runs": runs, "load_average_at_end": os.getloadavg(),
               "targets": {"rows_per_second": 300_000, "peak_rss_mb": 1536, "rss_ratio_4m_to_1m": [0.8, 1.2]}}
    if len(runs) >= 2 and runs[0]["import_peak_rss_mb"]:
        results["rss_ratio_largest_to_smallest"] = round(runs[-1]["import_peak_rss_mb"] / runs[0]["import_peak_rss_mb"], 3)
    record("import", results)


if __name__ == "__main__":
    main()
