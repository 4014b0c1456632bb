"""PublishSnapshot: load a snapshot's enriched tables into the warehouse ([warehouse] backend).

Complete when the warehouse holds the slice (its marker agrees with the tables' row counts) and
the publication record beside the voter file names the fingerprint of what was loaded."""

from __future__ import annotations

import luigi

from voterpipe import config, storage
from voterpipe.tasks.base import PreviousSnapshot, SnapshotTask, log
from voterpipe.tasks.voter_file import input_files
from voterpipe.warehouse import Warehouse, open_warehouse
from voterpipe.warehouse.tables import PUBLISH_SOURCES, TABLE_NAMES


def configured_warehouse() -> Warehouse:
    """The warehouse luigi.cfg [warehouse] names; the DuckDB file lives in the data root."""
    settings = config.warehouse()
    return open_warehouse(settings.backend, duckdb_path=config.data_root() / settings.duckdb_path,
                          dsn=config.warehouse_dsn(), schema=settings.schema,
                          duckdb_memory_limit=settings.duckdb_memory_limit,
                          duckdb_spill_dir=config.data_root() / "cache" / "duckdb_spill")


def publish_resources() -> dict:
    """One [resources] unit per warehouse table the publish replaces a slice of, named by backend,
    schema and table: luigid then lets one worker at a time publish into a table, whatever the
    snapshot (Luigi's capacity for a resource luigi.cfg does not list is 1). A DuckDB file also
    has one writer at a time: warehouse_duckdb."""
    settings = config.warehouse()
    held = {f"publish_{settings.backend}_{settings.schema}_{table}": 1 for table in TABLE_NAMES}
    if settings.backend == "duckdb":
        held["warehouse_duckdb"] = 1
    return held


class WarehouseTarget(luigi.Target):
    """Exists iff the warehouse's marker lists every table of the slice with the row count the
    table actually holds."""

    def __init__(self, warehouse: Warehouse, state: str, snapshot):
        self.warehouse = warehouse
        self.state = state
        self.snapshot = snapshot

    def exists(self) -> bool:
        return self.warehouse.is_published(self.state, self.snapshot)

    def __repr__(self) -> str:
        return f"WarehouseTarget({self.warehouse!r}, {self.state!r}, {self.snapshot})"


class PublishSnapshot(PreviousSnapshot, SnapshotTask):
    """Replace the snapshot's slice of voters_enriched, households, addresses, vote_history and
    cohort_turnout in the warehouse, atomically."""

    stage_name = "publish"

    @property
    def resources(self) -> dict:
        return publish_resources()

    def output(self) -> WarehouseTarget:
        return WarehouseTarget(configured_warehouse(), self.state, self.snapshot)

    def complete(self) -> bool:
        # the record first: it is a local file, the warehouse may be a server
        if not super().complete():
            return False
        return self.output().exists()

    def run_stage(self) -> None:
        fingerprint = self.fingerprint()
        files = input_files(self, PUBLISH_SOURCES)
        warehouse = self.output().warehouse
        self.progress(0.0, f"publishing to {warehouse.backend}")
        report = warehouse.publish(files)
        rows = {name: table["rows"] for name, table in report["tables"].items()}
        log.info("PublishSnapshot %s %s: %s rows %s in %.1fs", self.state, self.snapshot,
                 warehouse.backend, rows, report["seconds"])
        with storage.publish_dir(self.stage_target().path) as staging:
            storage.write_manifest(staging, {
                "stage": self.task_family, "state": self.state, "snapshot": self.snapshot.isoformat(),
                "fingerprint": fingerprint.to_json(), "backend": warehouse.backend, "rows": rows})
        self.progress(1.0, f"published {rows.get('voters_enriched', 0)} voters")
