"""Import one raw state drop into canonical voters, history and rejects Parquet files, streaming.

import_drop() is the whole stage without Luigi: it detects each file's layout, reads it in
blocks, normalises each block and appends it to the output files (the per-block work is in
formats/loading.py), and returns the manifest body.
"""

from __future__ import annotations

import gzip
import logging
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from voterpipe.formats import loading, snapshots
from voterpipe.formats.archives import archive_members, file_size, is_zip
from voterpipe.formats.drops import DEFAULT_MARKER
from voterpipe.formats.layouts import Detected, LayoutError, detect_file, layouts_for_state
from voterpipe.formats.loading import FileReport, LoadContext, Writers
from voterpipe.formats.normalise import AuxTable
from voterpipe.formats.decoding import TextBlocks
from voterpipe.manifests import FileRecord, ImportManifest, ImportTotals

log = logging.getLogger("voterpipe.import")

Progress = Callable[[float, str], None]


class DropError(ValueError):
    """A drop that cannot be imported: empty, no voter file, or an unknown layout."""


@dataclass
class DropPlan:
    """Which files of a drop are read, in which layout and order (aux, voters, history)."""

    directory: Path
    files: list[Detected]
    ignored: list[str] = field(default_factory=list)


def plan_drop(directory: Path, state: str, formats_dir: Path | list[Path] | None = None,
              marker: str = DEFAULT_MARKER) -> DropPlan:
    """Detect every file in a raw drop directory (not the completeness marker). Raises
    DropError/LayoutError with the file named."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DropError(f"raw drop {directory} does not exist")
    names = drop_file_names(directory, marker)
    if not names:
        raise DropError(f"raw drop {directory} is empty")
    layouts = layouts_for_state(state, formats_dir)
    if not layouts:
        raise DropError(f"no layout in config/formats/ for state {state!r}")

    by_name = {layout.name: layout for layout in layouts}
    voter_layout: str | None = None
    detected, ignored = [], []
    # Voter files first: their layout is preferred for the history and auxiliary files.
    order = sorted(names, key=lambda n: 0 if any(l.voters.matches_name(Path(n).name) for l in layouts) else 1)
    for name in order:
        found = detect_file(directory / name, layouts, prefer=voter_layout)
        if found is None:
            ignored.append(name)
            continue
        if found.role == "voters":
            if voter_layout and found.layout.name != voter_layout:
                raise LayoutError(f"{name} is in layout {found.layout.name} but other voter files of "
                                  f"the drop are in {voter_layout}")
            voter_layout = found.layout.name
        detected.append(found)
    if voter_layout is None:
        raise DropError(f"raw drop {directory} holds no voter file of state {state!r} "
                           f"(files: {', '.join(names[:20])})")
    layout = by_name[voter_layout]
    for found in detected:
        if found.role != "voters" and found.layout.name != layout.name:
            raise LayoutError(f"{found.path.name} is in layout {found.layout.name}, which does not "
                              f"belong with voter layout {layout.name}")
    for aux_name, aux_spec in layout.aux.items():
        if not any(d.role == aux_name for d in detected):
            raise DropError(f"layout {layout.name} needs its {aux_name} file "
                               f"({', '.join(aux_spec.patterns)}) and the drop has none")
    rank = {"voters": 1, "history": 2}
    detected.sort(key=lambda d: (rank.get(d.role, 0), d.path.relative_to(directory).as_posix()))
    return DropPlan(directory, detected, ignored)


def drop_file_names(directory: Path, marker: str = DEFAULT_MARKER) -> list[str]:
    """The drop's files by name, a .zip standing for its members ('x.zip/ncvoter_Statewide.txt');
    hidden files and the completeness marker are not part of it."""
    names = []
    for path in sorted(p for p in Path(directory).iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.name != marker):
        if path.is_symlink() and not path.resolve().is_relative_to(Path(directory).resolve()):
            # the raw layer is the record of what was delivered: a link out can change or vanish
            raise DropError(f"{path.name}: a symbolic link to outside the drop ({path.resolve()}); "
                            f"copy the file into the drop")
        if not is_zip(path):
            names.append(path.name)
            continue
        try:
            names += [member.relative_to(directory).as_posix() for member in archive_members(path)]
        except zipfile.BadZipFile as exc:
            raise DropError(f"{path.name}: not a readable zip archive ({exc}); incomplete or damaged") from None
    return names



def import_drop(
    raw_directory: Path, outputs: dict[str, Path], state: str, snapshot: date,
    chunk_rows: int = 200_000, progress: Progress | None = None, formats_dir: Path | list[Path] | None = None,
    marker: str = DEFAULT_MARKER,
) -> dict:
    """Write the voters, history and rejects Parquet files at the paths `outputs` gives by those
    names (inside a staging directory); return the manifest body (manifests.ImportManifest)."""
    state = state.lower()
    plan = plan_drop(raw_directory, state, formats_dir, marker)
    layout = next(d.layout for d in plan.files if d.role == "voters")
    aux_tables: dict[str, AuxTable] = {}
    records: list[FileRecord] = []
    totals = ImportTotals()
    tracker = _Progress(progress, sum(file_size(d.path) for d in plan.files) or 1)
    writers = Writers({name: Path(path) for name, path in outputs.items()})
    try:
        for detected in plan.files:
            name = detected.path.relative_to(plan.directory).as_posix()  # a zip member: 'x.zip/member'
            context = LoadContext(state, snapshot, name, layout, detected, aux_tables, writers,
                                  FileReport(name, detected.role, detected.layout.name))
            record = _import_file(context, chunk_rows, tracker)
            records.append(record)
            _add_to_totals(totals, record, context.report.history_rows)
    finally:
        writers.close()
    if totals.rows_read != totals.rows_loaded + totals.rows_rejected + totals.rows_skipped:
        raise AssertionError("rows read != loaded + rejected + skipped")
    tracker.report(1.0, f"imported {totals.voters_loaded} voters, {totals.history_loaded} history rows")
    return ImportManifest(
        layout=layout.name, layout_file=layout.source.name, files=records, ignored_files=list(plan.ignored),
        totals=totals, outputs={name: Path(path).name for name, path in outputs.items()},
    ).to_json()


class _Progress:
    """Progress over the whole drop, by bytes read."""

    def __init__(self, progress: Progress | None, total_bytes: int):
        self.report = progress or (lambda fraction, message: None)
        self.total_bytes = total_bytes
        self.done_bytes = 0  # of the files already read


def _import_file(context: LoadContext, chunk_rows: int, tracker: _Progress) -> FileRecord:
    """Read one file of the drop into the writers (an auxiliary table into context.aux)."""
    detected, file_report, name = context.detected, context.report, context.source_file
    blocks = TextBlocks(detected.path, detected.encoding, chunk_rows, strip_nul=not detected.spec.fixed_width)
    aux_chunks = []
    try:
        for parsed in _parsed_blocks(context, blocks, chunk_rows):
            if detected.role == "voters":
                loading.load_voters(context, parsed)
            elif detected.role == "history":
                loading.load_history(context, parsed)
            else:
                aux_chunks.append(loading.load_aux(context, parsed))
            if parsed.ends_chunk:
                context.writers.end_chunk()
            fraction = (tracker.done_bytes + blocks.bytes_read) / tracker.total_bytes
            tracker.report(min(fraction, 1.0), f"{name}: {file_report.rows_read} rows read")
    except (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile) as exc:
        raise DropError(f"{name}: compressed file is damaged or ends early after "
                        f"{file_report.rows_read} rows ({exc})") from None
    if detected.role not in ("voters", "history"):  # several files of one table (per county) add up
        table, earlier = loading.aux_table(detected.spec, aux_chunks), context.aux.get(detected.role)
        context.aux[detected.role] = table if earlier is None else loading.merge_aux(earlier, table)
    if file_report.rows_read != file_report.rows_loaded + file_report.rows_rejected + file_report.rows_skipped:
        raise AssertionError(f"{name}: rows read {file_report.rows_read} != loaded {file_report.rows_loaded}"
                             f" + rejected {file_report.rows_rejected} + skipped {file_report.rows_skipped}")
    if file_report.rows_read == 0 and detected.role == "voters":
        raise DropError(f"{name}: voter file has no data rows")
    if file_report.rows_loaded + file_report.rows_skipped == 0 and detected.role == "voters":
        raise DropError(f"{name}: no voter row could be loaded; all {file_report.rows_read} lines rejected "
                        f"({', '.join(sorted(file_report.rejected_by_reason)) or 'see rejects'})")
    tracker.done_bytes += blocks.total_bytes
    log.info("%s: read %d, loaded %d, rejected %d", name, file_report.rows_read,
             file_report.rows_loaded, file_report.rows_rejected)
    return file_report.record(detected, blocks)


def _parsed_blocks(context: LoadContext, blocks: TextBlocks, chunk_rows: int):
    """The file's ParsedBlocks. A latest_per_voter file (several snapshots) is first read for the
    lines to load: a small one is parsed once and its blocks held, a large one read twice."""
    detected = context.detected
    if detected.role != "voters" or not detected.spec.latest_per_voter:
        return loading.parse_blocks(blocks, detected)
    if snapshots.read_once(blocks):
        held = list(loading.parse_blocks(blocks, detected))
        context.keep_lines = snapshots.latest_of_blocks(held, detected, context.snapshot)
        return iter(held)
    first_pass = TextBlocks(detected.path, detected.encoding, chunk_rows, hashed=False)
    context.keep_lines = snapshots.latest_lines(first_pass, detected, context.snapshot)
    return loading.parse_blocks(blocks, detected)


def _add_to_totals(totals: ImportTotals, record: FileRecord, wide_history_rows: int) -> None:
    totals.rows_read += record.rows_read
    totals.rows_loaded += record.rows_loaded
    totals.rows_rejected += record.rows_rejected
    totals.rows_skipped += record.rows_skipped
    if record.role == "voters":
        totals.voters_loaded += record.rows_loaded
    elif record.role == "history":
        totals.history_loaded += record.rows_loaded
    totals.history_loaded += wide_history_rows
