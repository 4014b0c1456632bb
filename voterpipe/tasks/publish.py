"""PublishSnapshot: load a snapshot's enriched tables into the warehouse ([warehouse] backend)."""

from __future__ import annotations

import luigi

from voterpipe import config
from voterpipe.tasks.base import SnapshotTask, log
from voterpipe.tasks.voter_file import input_files, stage_requirements
from voterpipe.warehouse import Warehouse, open_warehouse
from voterpipe.warehouse.tables import PUBLISH_SOURCES


def configured_warehouse() -> Warehouse:
    """The warehouse luigi.cfg [warehouse] names; the DuckDB file lives in the data root."""
    settings = config.warehouse()
    return open_warehouse(settings.backend, duckdb_path=config.data_root() / settings.duckdb_path,
                          dsn=config.warehouse_dsn(), schema=settings.schema)


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


class PublishSnapshot(SnapshotTask):
    """Replace the snapshot's slice of voters_enriched, households, addresses, vote_history and
    cohort_turnout in the warehouse, atomically."""

    @property
    def resources(self) -> dict:
        # a DuckDB file has one writer at a time; Luigi's default capacity for an undeclared
        # resource is 1, so parallel workers queue their publishes instead of failing on its lock
        return {"warehouse_duckdb": 1} if config.warehouse().backend == "duckdb" else {}

    def requires(self):
        return stage_requirements(self, PUBLISH_SOURCES)

    def output(self) -> WarehouseTarget:
        return WarehouseTarget(configured_warehouse(), self.state, self.snapshot)

    def run(self) -> None:
        files = input_files(self, PUBLISH_SOURCES)
        warehouse = self.output().warehouse
        self.progress(0.0, f"publishing to {warehouse.backend}")
        report = warehouse.publish(files)
        rows = {name: table["rows"] for name, table in report["tables"].items()}
        log.info("PublishSnapshot %s %s: %s rows %s in %.1fs", self.state, self.snapshot,
                 warehouse.backend, rows, report["seconds"])
        self.progress(1.0, f"published {rows.get('voters_enriched', 0)} voters")
