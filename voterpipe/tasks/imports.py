"""ImportSnapshot: a raw state drop (01_raw) -> canonical voters, history and rejects (02_canonical)."""

from __future__ import annotations

from pathlib import Path

import luigi

from voterpipe import storage
from voterpipe.config import voterpipe as pipeline_config
from voterpipe.formats.importer import import_drop
from voterpipe.tasks.base import SnapshotTask, StateParameter


class RawDropTarget(luigi.Target):
    """A raw drop directory: it exists once it holds at least one file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_dir() and any(
            child.is_file() and not child.name.startswith(".") for child in self.path.iterdir())


class RawDrop(luigi.ExternalTask):
    """The state's files as delivered, in <data_root>/01_raw/<state>/<snapshot>/."""

    state = StateParameter(description="lowercase postal code, e.g. nc")
    snapshot = luigi.DateParameter(description="ISO date of the state's drop")

    def output(self) -> RawDropTarget:
        return RawDropTarget(storage.raw_dir(self.state, self.snapshot))


class ImportSnapshot(SnapshotTask):
    """Read every file of the drop in its detected layout; write voters/history/rejects Parquet."""

    layer = "canonical"

    def requires(self) -> RawDrop:
        return RawDrop(state=self.state, snapshot=self.snapshot)

    def build(self, staging: Path) -> dict:
        return import_drop(self.input().path, staging, self.state, self.snapshot,
                           chunk_rows=pipeline_config().chunk_rows, progress=self.progress)
