"""The base of every stage task: (state, snapshot) parameters, an atomic directory target."""

from __future__ import annotations

import logging
import re
from datetime import date
from pathlib import Path

import luigi

from voterpipe import storage

log = logging.getLogger("voterpipe")


class StateParameter(luigi.Parameter):
    """A lowercase two-letter postal code."""

    def normalize(self, x):
        value = str(x).strip().lower()
        if not re.fullmatch(r"[a-z]{2}", value):
            raise ValueError(f"state must be a two-letter postal code, got {x!r}")
        return value


class StageTarget(luigi.Target):
    """A published stage directory: it exists iff its manifest was published with it."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def exists(self) -> bool:
        return storage.is_published(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    def manifest(self) -> dict:
        return storage.read_manifest(self.path)

    def __repr__(self) -> str:
        return f"StageTarget({str(self.path)!r})"


class SnapshotTask(luigi.Task):
    """One stage for one state's snapshot. Subclasses set `layer` and implement build()."""

    state = StateParameter(description="lowercase postal code, e.g. nc")
    snapshot = luigi.DateParameter(description="ISO date of the state's drop, e.g. 2026-11-01")

    layer: str = ""

    def output(self) -> StageTarget:
        return StageTarget(storage.stage_dir(self.layer, self.state, self.snapshot))

    def run(self) -> None:
        with storage.publish_dir(self.output().path) as staging:
            manifest = self.build(staging)
            storage.write_manifest(
                staging,
                {"stage": self.task_family, "state": self.state,
                 "snapshot": self.snapshot.isoformat(), **manifest},
            )

    def build(self, staging: Path) -> dict:
        """Write this stage's files into `staging`; return the manifest body."""
        raise NotImplementedError

    def progress(self, fraction: float, message: str) -> None:
        """Report progress to the scheduler (visible in the luigid visualiser)."""
        self.set_progress_percentage(max(0, min(100, round(100 * fraction))))
        self.set_status_message(message)
        log.info("%s %s %s: %s", self.task_family, self.state, self.snapshot, message)


def previous_snapshot(layer: str, state: str, snapshot: date) -> date | None:
    """The newest published snapshot of `state` in `layer` strictly before `snapshot`."""
    parent = storage.layer_dir(layer) / state
    if not parent.is_dir():
        return None
    found = []
    for child in parent.iterdir():
        try:
            day = date.fromisoformat(child.name)
        except ValueError:
            continue
        if day < snapshot and storage.is_published(child):
            found.append(day)
    return max(found) if found else None
