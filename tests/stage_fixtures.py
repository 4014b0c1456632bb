"""Write a stage by hand, as its task would: tables in their declared schemas and a manifest with
the task's current fingerprint, so the task counts as complete and its downstream can run."""

from __future__ import annotations

import pyarrow as pa

from voterpipe import storage


def publish_stage(task, tables: dict[str, pa.Table], manifest: dict | None = None) -> None:
    with storage.publish_dir(task.stage_target().path) as staging:
        for name, table in tables.items():
            task.write(staging, name, table)
        storage.write_manifest(staging, {
            "stage": task.task_family, "state": task.state, "snapshot": task.snapshot.isoformat(),
            "fingerprint": task.fingerprint().to_json(), **(manifest or {})})
