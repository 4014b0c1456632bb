"""voters_enriched for a roll too big to join whole: the voters in consecutive voter_id blocks,
each joined with its own rows of the voter-keyed tables, so the memory held grows with the
address-keyed lookups only (a fraction of a voter's row), not with the whole roll."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe.addresses.spill import Spill
from voterpipe.warehouse.enriched_arrow import (
    DATASETS, JOIN_KEYS, JOINS, CompactMap, EnrichedJoin, _few_values, _row_lookup, enriched_columns,
    keys_unique, read_source, wanted_columns)
from voterpipe.warehouse.tables import UNIQUE_KEYS, source_schema

VOTERS_PER_BLOCK = 1_000_000  # a roll up to this size is joined whole; a bigger one in blocks of half
VOTER_KEYED = tuple(alias for alias, (_, _, side) in JOINS.items() if side == ("v", "voter_id"))
SHARED = tuple(alias for alias in JOINS if alias not in VOTER_KEYED)  # keyed by address or household


def block_count(voters: int, per_block: int = VOTERS_PER_BLOCK) -> int:
    """1 up to `per_block` voters; beyond, blocks of half that many."""
    per_block = max(per_block, 2)
    return 1 if voters <= per_block else -(-voters // (per_block // 2))


def open_join(paths: dict, state: str, snapshot: date, voter_columns: list[str], cohort_columns: list[str],
              per_block: int = VOTERS_PER_BLOCK, spill_dir: Path | None = None):
    """EnrichedJoin for a roll of up to `per_block` voters, else a BlockedJoin spilling its blocks
    under `spill_dir`: both give unique() and parts(rows_per_part) with the same rows."""
    voters = pq.read_metadata(paths["voters"]).num_rows
    blocks = block_count(voters, per_block)
    if blocks == 1:
        return EnrichedJoin(paths, state, snapshot, voter_columns, cohort_columns)
    return BlockedJoin(paths, state, snapshot, voter_columns, cohort_columns, blocks, spill_dir)


class BlockedJoin:
    """Held whole: every voter's voter_id, the voter-keyed tables' keys, and the address- and
    household-keyed lookups. The voters' other columns and their rows of the voter-keyed tables
    are read once and spilled to one Arrow file per block (owner-only, removed after), then
    joined a block at a time."""

    def __init__(self, paths: dict, state: str, snapshot: date, voter_columns: list[str],
                 cohort_columns: list[str], blocks: int, spill_dir: Path | None = None):
        self.paths, self.state, self.snapshot, self.blocks = paths, state, snapshot, blocks
        self.voter_columns, self.cohort_columns, self.spill_dir = voter_columns, cohort_columns, spill_dir
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
        and sorted on its own (call after unique() said yes)."""
        order = pc.sort_indices(self.voter_ids).to_numpy().astype(np.int64)
        # a whole number of parts per block: the same parts as one whole join, so the Parquet
        # writer gets the same chunks and writes the same pages (byte-identical files)
        part = max(rows_per_part, 1)
        size = -(-(-(-len(order) // self.blocks)) // part) * part
        voter_block = np.empty(len(order), np.int32)
        voter_block[order] = np.arange(len(order)) // size
        blocks = -(-len(order) // size)
        directory = Path(tempfile.mkdtemp(prefix=".voter-blocks-", dir=self.spill_dir))  # mode 0700
        try:
            spills = {alias: spill_blocks(self.paths[DATASETS[alias]], DATASETS[alias], self.wanted[alias],
                                          self._row_blocks(alias, voter_block), blocks, directory / alias)
                      for alias in ("v", *VOTER_KEYED)}
            # what only the split needed: every voter's id and sort order (77 MB at 4M voters)
            del order
            self.voter_ids = None
            shared_rows = self._shared_rows()
            for block in range(blocks):
                tables = {alias: files[block].load() for alias, files in spills.items()}
                in_block = np.flatnonzero(voter_block == block)  # file order, as its spilled rows
                join = EnrichedJoin(self.paths, self.state, self.snapshot, self.voter_columns,
                                    self.cohort_columns, tables={**tables, **self.shared},
                                    preset_rows={alias: rows.take(pa.array(in_block))
                                                 for alias, rows in shared_rows.items()})
                del tables, in_block
                yield from join.parts(rows_per_part)
                del join
                for files in spills.values():
                    files[block].path.unlink(missing_ok=True)  # a block with no rows has no file
                pa.default_memory_pool().release_unused()
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _shared_rows(self) -> dict[str, pa.Array]:
        """Each voter's row (voters.parquet order) in the address- and household-keyed tables,
        looked up once for the roll instead of once a block; their key columns then go (173 MB
        at 4M voters): the blocks need only these rows."""
        found = {}
        for link in ("va", "vh"):
            aliases = [alias for alias in SHARED if JOINS[alias][2][0] == link]
            column, dataset = JOINS[aliases[0]][2][1], DATASETS[link]
            probe = read_source(self.paths[dataset], dataset, [column])[column]
            if self.keyed[link][1] is not None:
                probe = probe.take(self.keyed[link][1])
            for alias in aliases:
                rows = _row_lookup(probe, self.shared[alias][JOINS[alias][1]])
                found[alias] = rows if rows is not None else pa.array(np.arange(len(probe), dtype=np.int32))
            del probe
        for alias in found:
            del self.shared[alias][JOINS[alias][1]]
        pa.default_memory_pool().release_unused()
        return found

    def _row_blocks(self, alias: str, voter_block: np.ndarray) -> np.ndarray:
        """The block of each row of the alias's file: its voter's block, -1 for a row no voter has."""
        if alias == "v" or self.keyed[alias][1] is None:
            return voter_block
        rows = self.keyed[alias][1]
        found = pc.is_valid(rows).to_numpy(zero_copy_only=False)
        blocks = np.full(pq.read_metadata(self.paths[DATASETS[alias]]).num_rows, -1, np.int32)
        blocks[rows.filter(pc.is_valid(rows)).to_numpy()] = voter_block[found]
        return blocks


class SpilledBlock:
    """One block's rows of one file, in file order, as an Arrow IPC file (a Spill)."""

    def __init__(self, path: Path, dataset: str, columns: list[str], coded: set[str], fields: dict,
                 schema: pa.Schema):
        self.spill, self.path, self.schema = Spill(path), path, schema
        self.dataset, self.columns, self.coded, self.fields = dataset, columns, coded, fields

    def load(self) -> dict[str, pa.Array | CompactMap]:
        """The block's columns as read_source gives them (text with few values dictionary-encoded,
        maps as CompactMap, columns the file lacks as typed nulls)."""
        table = self.spill.read_all()
        table = self.schema.empty_table() if table is None else table
        declared, found = source_schema(self.dataset), {}
        for name in self.columns:
            if name not in self.fields:
                kind = declared.field(name).type if declared is not None and name in declared.names else pa.null()
                found[name] = pa.nulls(table.num_rows, kind)
                continue
            column = table.column(name)
            table = table.drop_columns([name])  # its buffers go once converted
            if pa.types.is_map(column.type):
                held = CompactMap(column.type)
                for chunk in column.chunks:
                    held.append(chunk)
                found[name] = held.finish()
            else:
                column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
                found[name] = pc.dictionary_encode(column) if name in self.coded else column
            del column
        return found


def spill_blocks(path, dataset: str, columns: list[str], row_blocks: np.ndarray, blocks: int,
                 directory: Path) -> list[SpilledBlock]:
    """Split the file's rows by block (row_blocks: each row's block, -1 = none) into one Arrow
    file per block, reading the Parquet file once, a row group at a time."""
    directory.mkdir()
    handle = pq.ParquetFile(path)
    fields = {f.name: f for f in handle.schema_arrow}
    present = [c for c in columns if c in fields]
    coded = {c for c in present if c not in JOIN_KEYS and _few_values(handle, c, fields[c].type)}
    schema = pa.schema([fields[c] for c in present])
    spilled = [SpilledBlock(directory / f"{block}.arrow", dataset, columns, coded, fields, schema)
               for block in range(blocks)]
    try:
        start = 0
        for group in range(handle.num_row_groups):
            table = handle.read_row_group(group, columns=present)
            local = row_blocks[start:start + table.num_rows]
            start += table.num_rows
            by_block = np.argsort(local, kind="stable")  # file order within each block
            bounds = np.searchsorted(local[by_block], np.arange(-1, blocks + 1))
            for block in range(blocks):
                rows = by_block[bounds[block + 1]:bounds[block + 2]]
                if len(rows):
                    spilled[block].spill.write(table.take(pa.array(rows)))
            del table
    finally:
        for block in spilled:
            block.spill.close()
    return spilled
