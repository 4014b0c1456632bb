"""Real runs for the "never publish a bad snapshot" tests: a good NC snapshot published once per
module (copied into each test's data root), the next drop made from it with some damage, and
`voterpipe run` called as a user would, with its exit code and messages."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import luigi

from stage_fixtures import data_root_env  # noqa: E402
from voterpipe import cli, storage, synth
from voterpipe.geocode.tiger import import_tiger_dir

FIRST = date(2026, 11, 1)
SECOND = date(2026, 11, 8)
VOTER_FILE = "ncvoter_Statewide.txt"
HISTORY_FILE = "ncvhis_Statewide.txt"
MARKER = "_READY"


def run(*args: str, capsys) -> tuple[int, str]:
    """`voterpipe <args>` in this process: (exit code, stdout + stderr)."""
    luigi.task_register.Register.clear_instance_cache()
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def run_snapshot(snapshot: date, *extra: str, capsys) -> tuple[int, str]:
    return run("run", "--state", "nc", "--snapshot", snapshot.isoformat(), "--local-scheduler", *extra,
               capsys=capsys)


def build_good_root(root: Path, voters: int = 1500) -> None:
    """A data root where NC FIRST is built and published (the warehouse's current snapshot)."""
    with data_root_env(root):
        synth.write_drop(state="nc", voters=voters, snapshot=FIRST, seed=11, dirty_rate=0.005)
        import_tiger_dir(storage.cache_dir("synth") / "nc" / "tiger")
        luigi.task_register.Register.clear_instance_cache()
        code = cli.main(["run", "--state", "nc", "--snapshot", FIRST.isoformat(), "--local-scheduler"])
        assert code == 0, "the good snapshot must publish"


def current_snapshots(root: Path, state: str = "nc") -> set[date]:
    """The snapshots the warehouse's current_voters view shows for `state`."""
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        return {row[0] for row in con.execute(
            "SELECT DISTINCT snapshot FROM current_voters WHERE state = ?", [state]).fetchall()}
    finally:
        con.close()


def next_drop(root: Path, files=(VOTER_FILE, HISTORY_FILE), marker: bool = True, age_seconds: float = 0) -> Path:
    """SECOND's raw drop as a copy of FIRST's files (the same voters a week later)."""
    source = storage.raw_dir("nc", FIRST, root)
    target = storage.raw_dir("nc", SECOND, root)
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        shutil.copyfile(source / name, target / name)
    if age_seconds:
        age(target, age_seconds)
    if marker:
        write_marker(target)
    return target


def age(directory: Path, seconds: float) -> None:
    """Set every file's mtime `seconds` into the past (a drop that arrived a while ago)."""
    then = time.time() - seconds
    for path in directory.iterdir():
        os.utime(path, (then, then))


def write_marker(directory: Path) -> None:
    (directory / MARKER).write_text("")


def header_and_rows(path: Path) -> tuple[str, list[str]]:
    lines = path.read_text(encoding="latin-1").splitlines(keepends=True)
    return lines[0], lines[1:]


def rewrite(path: Path, header: str, rows: list[str]) -> None:
    path.write_text(header + "".join(rows), encoding="latin-1")
