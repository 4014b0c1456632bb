"""Repairs and nulls of a dirty synthetic drop, per column and reason: the closing numbers of issue 12.

For NC (nc_current) and a state whose ZIPs begin with 0 (NJ, nj_vlist): one drop of VOTERS voters
(seed 1, dirty rate 0.02) carrying every spreadsheet artefact its layout plants (float ZIPs and
codes, `27517-`, `27517-0000`; for NJ lost leading zeros and `2134.0`) beside the planted damage
(bad ZIPs and dates, NUL bytes, bad field counts), imported with import_drop. The baseline is the
same drop without the artefacts (`artefacts = {}` in a copy of the layout), imported in the same
run: the repairs beyond the baseline's must equal what was planted (a float of a padded code,
01 -> 1.0, moves from zero_padded to float), and the nulls must be the baseline's (repair, never
null). NC plants every artefact that fits its layout: its codes are unpadded or as delivered (no
padded code to lose a zero) and its ZIPs begin with 2 (no ZIP to lose one).

Run: .venv/bin/python -m bench.bench_repairs [voters]     (BENCH_REPAIR_VOTERS, default 100,000)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

from bench.common import record

VOTERS = int(os.environ.get("BENCH_REPAIR_VOTERS", "100000"))
SEED, DIRTY_RATE, SNAPSHOT = 1, 0.02, date(2026, 11, 1)
DROPS = (("nc", "nc_current"), ("nj", "nj_vlist"))
# Planted artefact -> the repair reasons the import counts for it (field None: the planted field).
REPAIRS_OF = {"float_zip": (("res_zip5", "float"),), "zip_dash": (("res_zip5", "trailing_dash"),),
              "zip_plus4_zeros": (("res_zip4", "empty_plus4"),), "lost_zero_zip": (("res_zip5", "leading_zero"),),
              "float_code": ((None, "float"),), "lost_zero_code": ((None, "zero_padded"),)}


def _without_artefacts(layout: str, where: Path) -> Path:
    """A formats directory holding the layout with `artefacts = {}`: the same drop, no artefacts."""
    from voterpipe.formats.layouts import load_layouts

    lines = [line for line in load_layouts()[layout].source.read_text().splitlines()
             if not line.startswith("artefacts = ")]
    lines.insert(lines.index("[synth]") + 1, "artefacts = {}")
    where.mkdir(parents=True)
    (where / f"{layout}.toml").write_text("\n".join(lines) + "\n")
    return where


def _drop_and_import(state: str, layout: str, root: Path, formats_dir: Path | None = None) -> dict:
    """Write the drop, import it; the planted artefacts and the manifest's counts by column and reason."""
    from voterpipe import storage
    from voterpipe.catalog import stage
    from voterpipe.formats.importer import import_drop
    from voterpipe.synth import write_drop

    summary = write_drop(state, VOTERS, SNAPSHOT, SEED, layout=layout, dirty_rate=DIRTY_RATE, root=root,
                         formats_dir=formats_dir)
    out = root / "out"
    out.mkdir()
    start = time.perf_counter()
    # Imported with the shipped layout: the importer ignores [synth].
    manifest = import_drop(storage.raw_dir(state, SNAPSHOT, root), stage("canonical").files_in(out), state, SNAPSHOT)
    seconds = time.perf_counter() - start
    planted, repaired, nulled = Counter(), Counter(), Counter()
    for entry in summary["files"]:
        for field_name, kinds in entry.get("artefacts", {}).items():
            planted.update({(field_name, kind): n for kind, n in kinds.items()})
    for entry in manifest["files"]:
        for counts, key in ((repaired, "values_repaired"), (nulled, "values_nulled")):
            for column, reasons in entry.get(key, {}).items():
                counts.update({(column, reason): n for reason, n in reasons.items()})
    return {"planted": planted, "repaired": repaired, "nulled": nulled, "damaged": summary["damaged"],
            "totals": manifest["totals"], "import_seconds": seconds}


def _expected_repairs(planted: Counter, zip_leading_zero: bool) -> Counter:
    """The repairs the planted artefacts must add: a float of 02134 (2134.0) also lost its zero."""
    expected = Counter()
    for (field_name, kind), n in planted.items():
        for column, reason in REPAIRS_OF[kind]:
            expected[(column or field_name, reason)] += n
        if kind == "float_zip" and zip_leading_zero:
            expected[("res_zip5", "leading_zero")] += n
    return +expected


def measure(state: str, layout: str, work: Path) -> dict:
    from voterpipe.formats.layouts import load_layouts

    dirty = _drop_and_import(state, layout, work / f"{layout}_dirty")
    clean = _drop_and_import(state, layout, work / f"{layout}_clean",
                             _without_artefacts(layout, work / f"{layout}_formats"))
    expected = _expected_repairs(dirty["planted"], load_layouts()[layout].canonical.zip_leading_zero)
    added = Counter({key: n - clean["repaired"].get(key, 0) for key, n in dirty["repaired"].items()})
    rows = [{"column": c, "outcome": outcome, "reason": r, "count": counts[(c, r)],
             "without_artefacts": base.get((c, r), 0), "planted": expected.get((c, r), 0) if outcome == "repaired" else None}
            for outcome, counts, base in (("repaired", dirty["repaired"], clean["repaired"]),
                                          ("nulled", dirty["nulled"], clean["nulled"]))
            for c, r in sorted(counts)]
    return {
        "state": state, "layout": layout, "voters": VOTERS, "seed": SEED, "dirty_rate": DIRTY_RATE,
        "voters_loaded": dirty["totals"]["voters_loaded"], "rows_rejected": dirty["totals"].get("rows_rejected"),
        "damaged": dirty["damaged"],
        "planted_artefacts": {f"{f}.{k}": n for (f, k), n in sorted(dirty["planted"].items())},
        "values_repaired": sum(dirty["repaired"].values()), "values_nulled": sum(dirty["nulled"].values()),
        "baseline_values_repaired": sum(clean["repaired"].values()),
        "baseline_values_nulled": sum(clean["nulled"].values()),
        "table": rows,
        # Each planted artefact adds one repair under its reason; a float of a padded code (01 ->
        # 1.0) is counted as a float instead of zero_padded, so other reasons may only shrink.
        "repairs_beyond_baseline_equal_planted": all(added.get(k, 0) == n for k, n in expected.items())
        and all(n <= 0 for k, n in added.items() if k not in expected),
        "nulls_equal_baseline": dirty["nulled"] == clean["nulled"],
        "import_seconds": round(dirty["import_seconds"], 2),
        "baseline_import_seconds": round(clean["import_seconds"], 2),
    }


def print_table(result: dict) -> None:
    print(f"\n{result['state'].upper()} {result['layout']}: {result['voters']} voters, seed {result['seed']}, "
          f"dirty rate {result['dirty_rate']}; values_repaired {result['values_repaired']}, "
          f"values_nulled {result['values_nulled']}")
    print(f"{'column':<24}{'outcome':<10}{'reason':<16}{'count':>8}{'no artefacts':>14}{'planted':>9}")
    for row in result["table"]:
        planted = "" if row["planted"] is None else str(row["planted"])
        print(f"{row['column']:<24}{row['outcome']:<10}{row['reason']:<16}{row['count']:>8}"
              f"{row['without_artefacts']:>14}{planted:>9}")
    print(f"repairs beyond the drop without artefacts = planted: {result['repairs_beyond_baseline_equal_planted']}; "
          f"nulls = the drop without artefacts: {result['nulls_equal_baseline']}")


def main(argv: list[str] | None = None) -> dict:
    global VOTERS
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        VOTERS = int(argv[0])
    work = Path(tempfile.mkdtemp(prefix="bench_repairs_"))
    try:
        results = {"drops": [measure(state, layout, work) for state, layout in DROPS]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for result in results["drops"]:
        print_table(result)
    record("repairs", results)
    return results


if __name__ == "__main__":
    main()
