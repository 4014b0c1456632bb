"""RawDrop (01_raw, external) and ImportSnapshot: a raw state drop -> canonical voters, history
and rejects (02_canonical)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import luigi
import pyarrow.parquet as pq

from voterpipe import catalog, config, quality, storage
from voterpipe.fingerprint import Fingerprint, raw_file_checksums, reuse_checksums
from voterpipe.formats.drops import DropRule, DropStatus, check_drop, data_files
from voterpipe.formats.importer import import_drop
from voterpipe.formats.layouts import Layout, layouts_for_state, load_layouts
from voterpipe.tasks.base import SnapshotTask, StateParameter, log

_incomplete_logged: set[tuple] = set()


def drop_rule(state: str) -> DropRule:
    """luigi.cfg [drop], overridden per state by [drop.<state>]."""
    return DropRule(**config.state_values("drop", state))


class RawDropTarget(luigi.Target):
    """A raw drop directory: it exists once it is complete (formats/drops.py: the declared files
    are there, and the marker is written or nothing changed for settle_seconds)."""

    def __init__(self, path: Path, state: str):
        self.path = Path(path)
        self.state = state

    def files(self) -> list[Path]:
        """The drop's files (hidden files, such as a copy in progress, and the marker are not part of it)."""
        return data_files(self.path, drop_rule(self.state).marker)

    def status(self) -> DropStatus:
        if storage.remote() is not None:
            if self._imported_unchanged():
                return DropStatus(self.path)  # complete, and not fetched just to say so
            storage.pull(self.path)  # the drop as uploaded, file mtimes kept
        return check_drop(self.path, layouts_for_state(self.state, config.formats_dirs()), drop_rule(self.state))

    def exists(self) -> bool:
        return self.status().complete

    def _imported_unchanged(self) -> bool:
        """s3:// root: the drop's import is published and the bucket holds the same files (names,
        sizes, mtimes) it recorded, so the drop was complete and still is."""
        imported = storage.published_manifest(catalog.stage("canonical").directory(self.state, self.path.name))
        recorded = Fingerprint.from_json((imported or {}).get("fingerprint"))
        listed = storage.remote_files(self.path, drop_rule(self.state).marker)
        return recorded is not None and reuse_checksums(listed, recorded) is not None


class RawDrop(luigi.ExternalTask):
    """The state's files as delivered, in <data_root>/01_raw/<state>/<snapshot>/. Incomplete, the
    run stops with Luigi's missing-data code and the reason (voterpipe run prints it)."""

    state = StateParameter(description="lowercase postal code, e.g. nc")
    snapshot = luigi.DateParameter(description="ISO date of the state's drop")

    def output(self) -> RawDropTarget:
        return RawDropTarget(catalog.stage("raw").directory(self.state, self.snapshot), self.state)

    def complete(self) -> bool:
        status = self.output().status()
        if not status.complete and status.directory.exists():
            key = (self.task_id, status.reason())
            if key not in _incomplete_logged:
                _incomplete_logged.add(key)
                log.warning("%s", status.reason())
        return status.complete


def previous_drop(state: str, snapshot: date) -> date | None:
    """The newest raw drop of `state` strictly before `snapshot` (whatever has been built)."""
    parent = catalog.stage("raw").directory(state, snapshot).parent
    earlier = []
    for child in storage.child_names(parent):
        try:
            day = date.fromisoformat(child)
        except ValueError:
            continue
        if day < snapshot and RawDrop(state=state, snapshot=day).complete():
            earlier.append(day)
    return max(earlier) if earlier else None


class ImportSnapshot(SnapshotTask):
    """Read every file of the drop in its detected layout; write voters/history/rejects Parquet."""

    stage_name = "canonical"

    def raw_checksums(self) -> tuple[dict, dict]:
        drop = self.requires()["raw"].output()
        target = self.stage_target()
        recorded = target.fingerprint() if target.exists() else None
        if storage.remote() is not None:
            # an s3:// root: the bucket's sizes and mtimes; the drop is fetched only to hash what changed
            reused = reuse_checksums(storage.remote_files(drop.path, drop_rule(self.state).marker), recorded)
            if reused is not None:
                return reused
            storage.pull(drop.path)
        return raw_file_checksums(drop.files(), drop.path, recorded)

    def build(self, staging: Path) -> dict:
        body = import_drop(self.input()["raw"].path, self.stage.files_in(staging), self.state,
                           self.snapshot, chunk_rows=config.voterpipe().chunk_rows,
                           progress=self.progress, formats_dir=config.formats_dirs(),
                           marker=drop_rule(self.state).marker)
        limits, accept = self.thresholds(), self.accepted()
        outputs = self.stage.files_in(staging)
        non_null = {"voters": non_null_counts(outputs["voters"]), "history": non_null_counts(outputs["history"])}
        sources = raw_columns(load_layouts(config.formats_dirs())[body["layout"]])
        body["gates"] = self.enforce_gates([
            quality.rejected_lines_gate(body["files"], limits["rejected_lines"], accept),
            quality.column_nulled_gate(body["files"], non_null, limits["column_nulled"], accept, sources),
        ])
        return body


def raw_columns(layout: Layout) -> dict[tuple[str, str], str]:
    """(role, canonical column) -> the raw column a field reads directly (not joins or lookups)."""
    found = {}
    for role, spec in (("voters", layout.voters), ("history", layout.history)):
        for name, field_spec in (spec.fields if spec is not None else {}).items():
            if "column" in field_spec and "lookup" not in field_spec:
                found[(role, name)] = field_spec["column"]
    return found


def non_null_counts(path: Path) -> dict[str, int]:
    """Non-null values per column of a Parquet file, from its statistics (no data read)."""
    metadata = pq.ParquetFile(path).metadata
    counts: dict[str, int] = {}
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            stats = column.statistics
            nulls = stats.null_count if stats is not None and stats.has_null_count else 0
            name = column.path_in_schema
            counts[name] = counts.get(name, 0) + row_group.num_rows - nulls
    return counts
