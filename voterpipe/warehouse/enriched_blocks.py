"""voters_enriched for a roll too big to join whole: the voters in consecutive voter_id blocks,
each joined with its own rows of the voter-keyed tables, so the memory held grows with the
address-keyed lookups only (a fraction of a voter's row), not with the whole roll."""

from __future__ import annotations

from datetime import date
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe.warehouse.enriched_arrow import (
    DATASETS, JOIN_KEYS, JOINS, CompactMap, EnrichedJoin, _few_values, _row_lookup, enriched_columns,
    keys_unique, read_source, wanted_columns)
from voterpipe.warehouse.tables import UNIQUE_KEYS, source_schema

VOTERS_PER_BLOCK = 1_000_000  # a roll up to this size is joined whole, as before
VOTER_KEYED = tuple(alias for alias, (_, _, side) in JOINS.items() if side == ("v", "voter_id"))
SHARED = tuple(alias for alias in JOINS if alias not in VOTER_KEYED)  # keyed by address or household


def block_count(voters: int, per_block: int = VOTERS_PER_BLOCK) -> int:
    return max(1, -(-voters // max(per_block, 1)))


def open_join(paths: dict, state: str, snapshot: date, voter_columns: list[str], cohort_columns: list[str],
              per_block: int = VOTERS_PER_BLOCK):
    """EnrichedJoin for a roll of up to `per_block` voters, else a BlockedJoin: both give
    unique() and parts(rows_per_part) with the same rows."""
    voters = pq.read_metadata(paths["voters"]).num_rows
    if block_count(voters, per_block) == 1:
        return EnrichedJoin(paths, state, snapshot, voter_columns, cohort_columns)
    return BlockedJoin(paths, state, snapshot, voter_columns, cohort_columns, block_count(voters, per_block))


class BlockedJoin:
    """Held whole: every voter's voter_id, the voter-keyed tables' keys, and the address- and
    household-keyed lookups. Read per block: the voters' other columns and their rows of the
    voter-keyed tables (each file read once per block, a row group at a time)."""

    def __init__(self, paths: dict, state: str, snapshot: date, voter_columns: list[str],
                 cohort_columns: list[str], blocks: int):
        self.paths, self.state, self.snapshot, self.blocks = paths, state, snapshot, blocks
        self.voter_columns, self.cohort_columns = voter_columns, cohort_columns
        self.wanted = wanted_columns(enriched_columns(voter_columns, cohort_columns))
        self.voter_ids = read_source(paths["voters"], "voters", ["voter_id"])["voter_id"]
        self.shared = {alias: read_source(paths[DATASETS[alias]], DATASETS[alias], self.wanted[alias])
                       for alias in SHARED}
        self.keyed: dict[str, tuple[pa.Array | None, pa.Array | None]] = {}
        for alias in VOTER_KEYED:
            key = JOINS[alias][1]
            keys = read_source(paths[DATASETS[alias]], DATASETS[alias], [key])[key]
            rows = _row_lookup(self.voter_ids, keys)
            # keys listing the voters row for row are voters' own: unique, and not needed again
            self.keyed[alias] = (keys if rows is not None else None, rows)
            del keys

    def unique(self) -> bool:
        """As EnrichedJoin.unique, on the whole key columns."""
        checks = [self.shared[alias][UNIQUE_KEYS[DATASETS[alias]]] for alias in SHARED]
        checks += [keys for keys, rows in self.keyed.values() if rows is not None]
        return all(keys_unique(keys) for keys in checks)

    def parts(self, rows_per_part: int) -> Iterator[pa.Table]:
        """voters_enriched in voter_id order: each block is a consecutive voter_id range, joined
        and sorted on its own."""
        order = pc.sort_indices(self.voter_ids).to_numpy().astype(np.int64)
        # a whole number of parts per block: the same parts as one whole join, so the Parquet
        # writer gets the same chunks and writes the same pages (byte-identical files)
        part = max(rows_per_part, 1)
        size = -(-(-(-len(order) // self.blocks)) // part) * part
        for start in range(0, len(order), size):
            join = self._block_join(np.sort(order[start:start + size]))
            yield from join.parts(rows_per_part)
            del join
            pa.default_memory_pool().release_unused()

    def _block_join(self, voter_rows: np.ndarray) -> EnrichedJoin:
        tables = {"v": read_rows(self.paths["voters"], "voters", self.wanted["v"], voter_rows)}
        for alias, (_, rows) in self.keyed.items():
            if rows is None:  # the table lists the voters row for row
                needed = voter_rows
            else:
                looked = rows.take(pa.array(voter_rows)).drop_null().to_numpy()
                needed = np.unique(looked).astype(np.int64)
            tables[alias] = read_rows(self.paths[DATASETS[alias]], DATASETS[alias], self.wanted[alias], needed)
        tables.update(self.shared)
        return EnrichedJoin(self.paths, self.state, self.snapshot, self.voter_columns, self.cohort_columns,
                            tables=tables)


def read_rows(path, dataset: str, columns: list[str], rows: np.ndarray) -> dict[str, pa.Array | CompactMap]:
    """read_source for the given rows (ascending) only, read one row group at a time."""
    rows = np.asarray(rows, dtype=np.int64)
    handle = pq.ParquetFile(path)
    fields = {f.name: f for f in handle.schema_arrow}
    declared = source_schema(dataset)
    starts = np.cumsum([0] + [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)])
    groups = [(g, rows[(rows >= starts[g]) & (rows < starts[g + 1])] - starts[g])
              for g in range(handle.num_row_groups)]
    groups = [(g, local) for g, local in groups if len(local)]
    found: dict = {}
    for name in columns:
        if name not in fields:
            kind = declared.field(name).type if declared is not None and name in declared.names else pa.null()
            found[name] = pa.nulls(len(rows), kind)
            continue
        is_map = pa.types.is_map(fields[name].type)
        coded = not is_map and name not in JOIN_KEYS and _few_values(handle, name, fields[name].type)
        reader = pq.ParquetFile(path, read_dictionary=[name] if coded else None)
        pieces = [reader.read_row_group(g, columns=[name]).column(0).combine_chunks().take(pa.array(local))
                  for g, local in groups]
        if is_map:
            held = CompactMap(fields[name].type)
            for piece in pieces:
                held.append(piece)
            found[name] = held.finish()
        else:
            found[name] = pa.concat_arrays(pieces) if pieces else pa.array([], fields[name].type)
        del pieces
    return found
