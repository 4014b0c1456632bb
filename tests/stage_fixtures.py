"""Write a stage by hand, as its task would: tables in their declared schemas and a manifest with
the task's current fingerprint, so the task counts as complete and its downstream can run."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow as pa

from voterpipe import storage
from voterpipe.config import DATA_ROOT_ENV


@contextlib.contextmanager
def data_root_env(root: Path):
    """$VOTERPIPE_DATA_ROOT set to `root` inside the block (for fixtures wider than one test,
    which monkeypatch cannot serve), restored after it."""
    previous = os.environ.get(DATA_ROOT_ENV)
    os.environ[DATA_ROOT_ENV] = str(root)
    try:
        yield root
    finally:
        if previous is None:
            os.environ.pop(DATA_ROOT_ENV, None)
        else:
            os.environ[DATA_ROOT_ENV] = previous


def publish_stage(task, tables: dict[str, pa.Table], manifest: dict | None = None) -> None:
    with storage.publish_dir(task.stage_target().path) as staging:
        for name, table in tables.items():
            task.write(staging, name, table)
        storage.write_manifest(staging, {
            "stage": task.task_family, "state": task.state, "snapshot": task.snapshot.isoformat(),
            "fingerprint": task.fingerprint().to_json(), **(manifest or {})})
