"""Publishing a snapshot's tables to the warehouse: embedded DuckDB (default) or PostgreSQL.

Tables (each with state and snapshot): voters_enriched, households, addresses, vote_history,
cohort_turnout; views current_voters, current_households, current_addresses,
current_vote_history and current_cohort_turnout show each state's latest published snapshot.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from voterpipe.warehouse.duckdb_backend import DuckDBWarehouse
from voterpipe.warehouse.postgres_backend import (  # noqa: F401
    PostgresWarehouse, WarehouseConnectionError, WarehouseLoadError, describe_dsn, redact,
)
from voterpipe.warehouse.tables import (  # noqa: F401
    TABLE_NAMES, TABLES, SnapshotNotPublished, SourceFiles, WarehouseInputError, source_files,
)

Warehouse = DuckDBWarehouse | PostgresWarehouse


def open_warehouse(backend: str, *, duckdb_path: Path | None = None, dsn: str = "",
                   schema: str = "voterpipe", duckdb_memory_limit: str = "",
                   duckdb_spill_dir: Path | None = None) -> Warehouse:
    """The warehouse named by `backend` ('duckdb' needs duckdb_path, 'postgres' needs dsn). The
    DuckDB publish spills past duckdb_memory_limit ("" = DuckDB's default) to duckdb_spill_dir."""
    if backend == "duckdb":
        if duckdb_path is None:
            raise ValueError("the duckdb warehouse needs duckdb_path")
        return DuckDBWarehouse(Path(duckdb_path), duckdb_memory_limit, duckdb_spill_dir)
    if backend == "postgres":
        return PostgresWarehouse(dsn, schema)
    raise ValueError(f"unknown warehouse backend {backend!r}; expected duckdb or postgres")


def publish_snapshot(warehouse: Warehouse, state: str, snapshot: date,
                     root: Path | None = None) -> dict:
    """Publish the upstream files of (state, snapshot) under the data root; return the report."""
    return warehouse.publish(source_files(state, snapshot, root))
