"""Golden tests: for each layout, five hand-written lines in the exact delivered form
(tests/golden/<layout>/raw/) and the canonical rows each must produce (expected.json, written by
hand, never by the importer). Only the columns expected.json names are compared; null is null."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from voterpipe.formats.importer import import_drop

GOLDEN = Path(__file__).parent / "golden"
LAYOUTS = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").is_file())
SNAPSHOT = date(2026, 11, 1)


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):  # the extra map: [(key, value), ...]
        return json.dumps(dict(value), sort_keys=True)
    return str(value)


def _key(row: dict) -> tuple:
    """A voter row by file and line; a history row also by election (a wide line holds several)."""
    day = row.get("election_date")
    return (row.get("source_file", row.get("file")), row.get("source_line", row.get("line")),
            *([_as_text(day)] if "election_date" in row else []))


def _rows(path: Path) -> dict[tuple, dict]:
    return {_key(row): row for row in pq.read_table(path).to_pylist()}


def _compare(kind: str, expected: list[dict], actual: dict[tuple, dict]) -> list[str]:
    problems = []
    for want in expected:
        key = _key(want)
        row = actual.get(key)
        if row is None:
            problems.append(f"{kind} {key}: no canonical row")
            continue
        for column, value in want.items():
            if column in ("file", "line"):
                continue
            got = row[column]
            got = _as_text(got) if column != "extra" else json.dumps(dict(got or []), sort_keys=True)
            value = json.dumps(value, sort_keys=True) if column == "extra" else value
            if got != value:
                problems.append(f"{kind} {key} {column}: expected {value!r}, got {got!r}")
    return problems


@pytest.mark.parametrize("layout", LAYOUTS)
def test_golden_lines_produce_the_hand_written_canonical_rows(layout, tmp_path):
    case = GOLDEN / layout
    expected = json.loads((case / "expected.json").read_text())
    raw = tmp_path / "raw"
    shutil.copytree(case / "raw", raw)
    out = tmp_path / "out"
    out.mkdir()
    outputs = {name: out / f"{name}.parquet" for name in ("voters", "history", "rejects")}
    manifest = import_drop(raw, outputs, expected["state"], SNAPSHOT)
    assert manifest["layout"] == layout
    for entry in manifest["files"]:
        assert entry["rows_read"] == entry["rows_loaded"] + entry["rows_rejected"] + entry["rows_skipped"]
    assert manifest["totals"]["rows_rejected"] == expected.get("rejected", 0)
    assert manifest["totals"]["rows_skipped"] == expected.get("skipped", 0)
    for entry in manifest["files"]:  # null counts the case names, by column and reason
        for column, reasons in expected.get("values_nulled", {}).get(entry["name"], {}).items():
            assert entry["values_nulled"].get(column) == reasons, (entry["name"], column)
    voters, history = _rows(outputs["voters"]), _rows(outputs["history"])
    assert sum(f["rows_read"] for f in manifest["files"] if f["role"] == "voters") == 5  # five voter lines
    assert len(voters) == len(expected["voters"])
    assert len(history) == len(expected["history"])
    problems = _compare("voters", expected["voters"], voters) + _compare("history", expected["history"], history)
    assert problems == []
