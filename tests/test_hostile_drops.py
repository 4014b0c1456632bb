"""Bad-input suite: a table of hostile NC drops, each run through the real `voterpipe run`
command in a subprocess, each with its expected outcome: it loads with a precise count of
rejected lines, or the command fails with an exit code and a message naming the file and the
cause (voterpipe's own error, never a bare stack trace as the last word).

Decisions the table records:
- CSV injection: the string is data. Parquet and the warehouse keep it as delivered; "never
  evaluated" means every cell of the report's CSVs that a spreadsheet would read as a formula (a
  text cell starting with = + - @, tab or CR that is not a number) is written with a leading
  apostrophe, so it opens as text (voterpipe/report/page.py spreadsheet_safe).
- A drop file that is a symbolic link to outside the drop is refused: the raw layer is the record
  of what was delivered, and a link out can change or vanish without the drop changing.
- A classic Mac file (CR ends every line) loads; in a file of LF lines a lone CR stays a stray CR
  within a value (a counted space), so mixed endings merge lines, which are rejected and counted.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq
import pytest

from stage_fixtures import data_root_env  # noqa: E402
from voterpipe import storage, synth
from voterpipe.config import DATA_ROOT_ENV
from voterpipe.geocode.tiger import import_tiger_dir

pytestmark = pytest.mark.chaos

REPO_ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = date(2026, 11, 1)
VOTERS = 200
VOTER_FILE = "ncvoter_Statewide.txt"
HISTORY_FILE = "ncvhis_Statewide.txt"
INJECTION = "=cmd|' /C calc'!A0"
TASK_FAILED, MISSING_DATA, QUALITY_GATE = 30, 20, 50
RUN_TIMEOUT = 300


# ---- the drop and its files ----------------------------------------------------------------------

def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def _field_index(path: Path, name: str) -> int:
    return _lines(path)[0].rstrip(b"\r\n").split(b"\t").index(name.encode())


def _set_field(line: bytes, index: int, value: bytes) -> bytes:
    ending = line[len(line.rstrip(b"\r\n")):]
    fields = line.rstrip(b"\r\n").split(b"\t")
    fields[index] = value
    return b"\t".join(fields) + ending


@dataclass(frozen=True)
class Outcome:
    """What a hostile drop must give: the exit code; for a load, the voters loaded, the lines
    rejected and counters of the voter file's import record; for a failure, what the command's
    last messages say (the file and the cause). `check` looks further into the data root."""

    code: int
    voters: int | None = None
    rejected: int | None = None
    says: tuple[str, ...] = ()
    task: str = "ImportSnapshot"  # how far the run goes
    voter_file: dict = field(default_factory=dict)  # import record key -> value
    check: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    damage: Callable[[Path], None]  # edits the raw drop directory
    expected: Outcome

    def __str__(self) -> str:
        return self.name


def empty_file(drop: Path) -> None:
    (drop / VOTER_FILE).write_bytes(b"")


def header_only(drop: Path) -> None:
    _write_lines(drop / VOTER_FILE, _lines(drop / VOTER_FILE)[:1])


def unknown_header(drop: Path) -> None:
    lines = _lines(drop / VOTER_FILE)
    _write_lines(drop / VOTER_FILE, [b"voter\tsurname\tgiven\tstreet\tcity\n", *lines[1:]])


def truncated_last_line(drop: Path) -> None:
    lines = _lines(drop / VOTER_FILE)
    _write_lines(drop / VOTER_FILE, [*lines[:-1], lines[-1][: len(lines[-1]) // 2]])


def gzip_ends_early(drop: Path, keep: float = 0.5) -> None:
    packed = gzip.compress((drop / VOTER_FILE).read_bytes())
    (drop / (VOTER_FILE + ".gz")).write_bytes(packed[: int(len(packed) * keep)])
    (drop / VOTER_FILE).unlink()


def gzip_ends_past_the_head(drop: Path) -> None:
    """Cut in the 3 MB of random letters an address of line 150 holds: the first megabyte (what
    layout detection reads) decompresses, the end does not."""
    path = drop / VOTER_FILE
    lines = _lines(path)
    noise = np.random.default_rng(3).integers(ord("A"), ord("Z") + 1, 3 << 20, dtype=np.uint8).tobytes()
    lines[150] = _set_field(lines[150], _field_index(path, "res_street_address"), noise)
    _write_lines(path, lines)
    gzip_ends_early(drop, keep=0.9)


def zip_ends_early(drop: Path) -> None:
    archive = drop / "ncvoter_Statewide.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.write(drop / VOTER_FILE, VOTER_FILE)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    (drop / VOTER_FILE).unlink()


def mixed_encodings(drop: Path) -> None:
    """The file is Latin-1 (its layout says so); ten lines arrive UTF-8 encoded, one of them
    with a byte that is valid in neither (0x81, a C1 control in Latin-1)."""
    path = drop / VOTER_FILE
    lines = _lines(path)
    column = _field_index(path, "last_name")
    for number in range(10, 20):
        lines[number] = _set_field(lines[number], column, "MUÑOZ-ÉLAN".encode("utf-8"))
    lines[20] = _set_field(lines[20], column, b"BAD\x81BYTE")
    _write_lines(path, lines)


def ten_megabyte_line(drop: Path) -> None:
    path = drop / VOTER_FILE
    lines = _lines(path)
    lines[5] = _set_field(lines[5], _field_index(path, "res_street_address"), b"A" * (10 << 20))
    _write_lines(path, lines)


def csv_injection(drop: Path) -> None:
    """The injection string as every voter's county name, precinct code and city."""
    path = drop / VOTER_FILE
    lines = _lines(path)
    columns = [_field_index(path, name) for name in ("county_desc", "precinct_abbrv", "res_city_desc")]
    for number in range(1, len(lines)):
        for column in columns:
            lines[number] = _set_field(lines[number], column, INJECTION.encode())
    _write_lines(path, lines)


def duplicate_voter_ids(drop: Path) -> None:
    lines = _lines(drop / VOTER_FILE)
    _write_lines(drop / VOTER_FILE, [*lines, *lines[1:4]])


def history_of_unknown_voters(drop: Path) -> None:
    path = drop / HISTORY_FILE
    lines = _lines(path)
    column = _field_index(path, "ncid")
    extra = [_set_field(line, column, f"ZZ{n:06d}".encode()) for n, line in enumerate(lines[1:6])]
    _write_lines(path, [*lines, *extra])


def zero_voter_rows(drop: Path) -> None:
    """A header and blank lines: not one voter, while the history file is intact."""
    _write_lines(drop / VOTER_FILE, [_lines(drop / VOTER_FILE)[0], b"\n", b"\n", b"\n"])


def bom_in_the_middle(drop: Path) -> None:
    """Two files concatenated, the second starting with a UTF-8 byte-order mark."""
    lines = _lines(drop / VOTER_FILE)
    lines[100] = b"\xef\xbb\xbf" + lines[100]
    _write_lines(drop / VOTER_FILE, lines)


def _line_endings(ending: Callable[[int], bytes]) -> Callable[[Path], None]:
    def damage(drop: Path) -> None:
        for name in (VOTER_FILE, HISTORY_FILE):
            lines = _lines(drop / name)
            _write_lines(drop / name, [line.rstrip(b"\r\n") + ending(n) for n, line in enumerate(lines)])
    return damage


def symlink_outside(drop: Path) -> None:
    outside = drop.parents[4] / "elsewhere" / VOTER_FILE
    outside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(drop / VOTER_FILE, outside)
    (drop / VOTER_FILE).symlink_to(outside)


def untouched(drop: Path) -> None:
    pass


def _canonical(root: Path, name: str):
    return pq.read_table(storage.stage_dir("canonical", "nc", SNAPSHOT, root) / name).to_pandas()


def injection_is_data_never_a_formula(root: Path) -> None:
    """Carried as data (the voter file and the warehouse hold it as given); in the report's CSVs
    every cell a spreadsheet would evaluate is prefixed with an apostrophe, so it opens as text."""
    enriched = pq.read_table(storage.stage_dir("reporting/voter_file", "nc", SNAPSHOT, root)
                             / "voters_enriched.parquet").to_pandas()
    assert set(enriched["county_name"]) == {INJECTION}
    report = storage.stage_dir("reporting/report", "nc", SNAPSHOT, root)
    cells = [cell for path in sorted(report.glob("*.csv"))
             for row in csv.reader(path.read_text(encoding="utf-8").splitlines()) for cell in row]
    assert "'" + INJECTION in cells  # it is there, as text
    formulas = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or re.match(r"-[^\d.]", c)]
    assert formulas == []


def bom_is_no_part_of_a_county_code(root: Path) -> None:
    assert _canonical(root, "voters.parquet")["county_code"].str.fullmatch(r"\d+").all()


def orphan_history_is_measured(root: Path) -> None:
    gates = storage.read_manifest(storage.stage_dir("cohorts", "nc", SNAPSHOT, root))["gates"]
    gate = next(g for g in gates if g["name"] == "history_not_on_roll")
    assert gate["passed"] and gate["detail"] == "5 of 631 history rows name a voter not in the voter file"


def long_value_is_carried_whole(root: Path) -> None:
    addresses = _canonical(root, "voters.parquet")["res_address_line"].str.len()
    assert addresses.max() >= 10 << 20


def same_voters_as_delivered(root: Path) -> None:
    voters = _canonical(root, "voters.parquet")
    assert voters["voter_id"].is_unique and voters["county_code"].str.fullmatch(r"\d+").all()
    assert not voters["last_name"].str.contains("\r|\ufffd", regex=True).any()


LOADS = dict(voters=VOTERS, rejected=0)
CASES = [
    Case("empty_file", empty_file, Outcome(TASK_FAILED, says=(VOTER_FILE, "file is empty"))),
    Case("header_only", header_only, Outcome(TASK_FAILED, says=(VOTER_FILE, "voter file has no data rows"))),
    Case("unknown_layout_header", unknown_header,
         Outcome(TASK_FAILED, says=(VOTER_FILE, "matches no known layout", "saw header 'voter"))),
    Case("truncated_last_line", truncated_last_line,
         Outcome(0, voters=VOTERS - 1, rejected=1, voter_file={"rejected_by_reason": {"wrong_field_count": 1}})),
    Case("gzip_ends_early", gzip_ends_early,
         Outcome(TASK_FAILED, says=(VOTER_FILE + ".gz", "compressed file is damaged or ends early"))),
    Case("gzip_ends_past_the_head", gzip_ends_past_the_head,
         Outcome(TASK_FAILED, says=(VOTER_FILE + ".gz", "ends early after 149 rows"))),
    Case("zip_ends_early", zip_ends_early,
         Outcome(MISSING_DATA, says=("ncvoter_Statewide.zip", "not a readable zip archive"))),
    Case("mixed_encodings", mixed_encodings,
         Outcome(0, **LOADS, voter_file={"encoding": "latin-1", "undecodable_bytes_replaced": 21})),
    Case("ten_megabyte_line", ten_megabyte_line,
         Outcome(0, **LOADS, task="EnrichSnapshot", check=long_value_is_carried_whole)),
    Case("csv_injection", csv_injection,
         Outcome(0, **LOADS, task="EnrichSnapshot", check=injection_is_data_never_a_formula)),
    Case("duplicate_voter_ids", duplicate_voter_ids,
         Outcome(TASK_FAILED, voters=VOTERS + 3, rejected=0, task="BuildVoterFile",
                 says=("02_canonical/nc/2026-11-01/voters.parquet", "3 repeated voter_id values"))),
    Case("history_of_unknown_voters", history_of_unknown_voters,
         Outcome(0, **LOADS, task="AnalyseCohorts", check=orphan_history_is_measured)),
    Case("zero_voter_rows", zero_voter_rows,
         Outcome(TASK_FAILED, says=(VOTER_FILE, "no voter row could be loaded; all 3 lines rejected (blank_line)"))),
    Case("bom_in_the_middle", bom_in_the_middle,
         Outcome(0, **LOADS, voter_file={"boms_stripped": 1}, check=bom_is_no_part_of_a_county_code)),
    Case("windows_line_endings", _line_endings(lambda n: b"\r\n"),
         Outcome(0, **LOADS, voter_file={"stray_cr_replaced": 0}, check=same_voters_as_delivered)),
    Case("classic_mac_line_endings", _line_endings(lambda n: b"\r"),
         Outcome(0, **LOADS, voter_file={"stray_cr_replaced": 0}, check=same_voters_as_delivered)),
    # A lone CR inside a file of LF lines is taken for a stray CR within a value (a space): the two
    # lines it separates become one line with too many fields, rejected; the gate stops the run.
    Case("mixed_line_endings", _line_endings(lambda n: (b"\n", b"\r\n", b"\r")[n % 3]),
         Outcome(QUALITY_GATE, says=("quality gate rejected_lines failed", "274 of 552 lines rejected",
                                     "worst file ncvhis_Statewide.txt"))),
    Case("symlink_to_outside_the_drop", symlink_outside,
         Outcome(TASK_FAILED, says=(VOTER_FILE, "a symbolic link to outside the drop"))),
    Case("path_with_spaces_and_non_ascii", untouched, Outcome(0, **LOADS, task="EnrichSnapshot")),
]


# ---- running ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-seed") / "data"
    root.mkdir()
    with data_root_env(root):
        synth.write_drop(state="nc", voters=VOTERS, snapshot=SNAPSHOT, seed=9, dirty_rate=0.0)
        import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
    return root


def run_cli(root: Path, task: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "voterpipe.cli", "--data-root", str(root), "run", "--state", "nc",
               "--snapshot", SNAPSHOT.isoformat(), "--local-scheduler", "--task", task]
    env = {**os.environ, DATA_ROOT_ENV: str(root)}
    env.pop("LUIGI_CONFIG_PATH", None)
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def last_messages(stderr: str) -> str:
    """What the command says after Luigi's summary: its messages and exit code."""
    return stderr.rsplit("===== Luigi Execution Summary =====", 1)[-1]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_drop(case, seed_root, tmp_path):
    parent = tmp_path / ("dätä röot with spaces" if case.name.startswith("path_") else "plain")
    root = parent / "data"
    shutil.copytree(seed_root, root, symlinks=True)
    drop = storage.raw_dir("nc", SNAPSHOT, root)
    case.damage(drop)
    os.utime(drop / "_READY")  # the marker is written after the files
    expected = case.expected
    result = run_cli(root, expected.task)
    said = last_messages(result.stderr)
    assert result.returncode == expected.code, f"{case.name}: exit {result.returncode}\n{result.stderr[-3000:]}"
    for text in expected.says:
        assert text in said, f"{case.name}: {text!r} not in the command's last words:\n{said}"
    if expected.code not in (0, QUALITY_GATE, MISSING_DATA):
        failure = re.search(r"failed: (\S+): ", said)
        assert failure and failure.group(1).startswith("voterpipe."), \
            f"{case.name}: not an error of voterpipe's own, which would say what is wrong:\n{said}"

    canonical = storage.stage_dir("canonical", "nc", SNAPSHOT, root)
    if expected.voters is not None:
        manifest = storage.read_manifest(canonical)
        assert manifest["totals"]["voters_loaded"] == expected.voters
        assert manifest["totals"]["rows_rejected"] == expected.rejected
        voter_record = next(f for f in manifest["files"] if f["role"] == "voters")
        assert {key: voter_record[key] for key in expected.voter_file} == expected.voter_file
        assert len(_canonical(root, "rejects.parquet")) == expected.rejected
    elif expected.code != 0:
        assert not storage.is_published(canonical) or expected.code == QUALITY_GATE
    if expected.check is not None:
        expected.check(root)
