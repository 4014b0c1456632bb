"""RawDrop (01_raw, external) and ImportSnapshot: a raw state drop -> canonical voters, history
and rejects (02_canonical)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import luigi

from voterpipe import catalog, config
from voterpipe.fingerprint import raw_file_checksums
from voterpipe.formats.importer import import_drop
from voterpipe.tasks.base import SnapshotTask, StateParameter


class RawDropTarget(luigi.Target):
    """A raw drop directory: it exists once it holds at least one file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def files(self) -> list[Path]:
        """The drop's files (hidden files, such as a copy in progress, are not part of it)."""
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.rglob("*") if p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(self.path).parts))

    def exists(self) -> bool:
        return bool(self.files())


class RawDrop(luigi.ExternalTask):
    """The state's files as delivered, in <data_root>/01_raw/<state>/<snapshot>/."""

    state = StateParameter(description="lowercase postal code, e.g. nc")
    snapshot = luigi.DateParameter(description="ISO date of the state's drop")

    def output(self) -> RawDropTarget:
        return RawDropTarget(catalog.stage("raw").directory(self.state, self.snapshot))


def previous_drop(state: str, snapshot: date) -> date | None:
    """The newest raw drop of `state` strictly before `snapshot` (whatever has been built)."""
    parent = catalog.stage("raw").directory(state, snapshot).parent
    earlier = []
    for child in parent.iterdir() if parent.is_dir() else []:
        try:
            day = date.fromisoformat(child.name)
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
        return raw_file_checksums(drop.files(), drop.path, recorded)

    def build(self, staging: Path) -> dict:
        return import_drop(self.input()["raw"].path, self.stage.files_in(staging), self.state,
                           self.snapshot, chunk_rows=config.voterpipe().chunk_rows,
                           progress=self.progress, formats_dir=config.formats_dirs())
