"""A part's rows read straight from the row groups of its Parquet file, when the part's key range is
exactly a run of whole row groups: no query engine, no row filter, nothing decoded twice.

Only for a table that is one source's columns with the slice's state and snapshot in front
(tables.table_sql's plain slice select), and only when every column the select yields has the
file's own Arrow type; otherwise the caller runs the select in DuckDB as before.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe.warehouse import tables as wt

# tables whose select is tables._slice_select over their single source
_SLICE_SELECT_TABLES = ("voters_enriched", "households", "vote_history", "cohort_turnout")


def _whole_groups(metadata, key: str, low, high) -> list[int] | None:
    """The row groups holding exactly the keys in [low, high), or None when a row group holds
    keys both inside and outside the range (or NULL keys, or has no statistics)."""
    column = metadata.schema.to_arrow_schema().get_field_index(key)
    if column < 0:
        return None
    groups = []
    for index in range(metadata.num_row_groups):
        stats = metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count:
            return None
        if not isinstance(stats.min, str):
            return None
        below = high is not None and stats.min >= high
        above = low is not None and stats.max < low
        if below or above:
            continue
        if (low is not None and stats.min < low) or (high is not None and stats.max >= high):
            return None
        groups.append(index)
    return groups


def row_group_batches(table: wt.WarehouseTable, path: Path, bound: tuple, arrow_schema: pa.Schema,
                      state: str, snapshot: date, batch_rows: int) -> Iterator[pa.RecordBatch] | None:
    """The part's batches, with the columns and types of arrow_schema (the select's), or None
    when this shortcut does not apply."""
    if table.name not in _SLICE_SELECT_TABLES or table.split_key is None:
        return None
    parquet = pq.ParquetFile(path)
    groups = _whole_groups(parquet.metadata, table.split_key, *bound)
    if groups is None:
        return None
    present = parquet.schema_arrow
    read = [f.name for f in arrow_schema if f.name not in wt.SLICE_COLUMNS and f.name in present.names]
    if any(present.field(name).type != arrow_schema.field(name).type for name in read) \
            or arrow_schema.names[:2] != list(wt.SLICE_COLUMNS):
        return None
    return _batches(parquet, groups, read, arrow_schema, state, snapshot, batch_rows)


def _batches(parquet: pq.ParquetFile, groups: list[int], read: list[str], arrow_schema: pa.Schema,
             state: str, snapshot: date, batch_rows: int) -> Iterator[pa.RecordBatch]:
    constants = {"state": pa.scalar(state, arrow_schema.field("state").type),
                 "snapshot": pa.scalar(snapshot, arrow_schema.field("snapshot").type)}
    for group in groups:
        for batch in parquet.read_row_group(group, columns=read, use_threads=False).to_batches(batch_rows):
            columns = []
            for field in arrow_schema:
                if field.name in constants:
                    columns.append(pa.repeat(constants[field.name], batch.num_rows))
                elif field.name in read:
                    columns.append(batch.column(field.name))
                else:  # a column the catalogue expects but this file lacks: NULL, as in the select
                    columns.append(pa.nulls(batch.num_rows, field.type))
            yield pa.RecordBatch.from_arrays(columns, schema=arrow_schema)
