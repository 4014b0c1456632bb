"""voters_enriched built with Arrow lookups instead of SQL joins: every lookup table has one row
per key, so each LEFT JOIN of voters_enriched_sql is a hash lookup (pc.index_in) and a take, and
the voter_id sort is one sort of the voter ids. Same rows and columns as the SQL, without
re-reading and re-hashing every lookup table once per voter_id range."""

from __future__ import annotations

from datetime import date
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import schema, storage
from voterpipe.warehouse.tables import UNIQUE_KEYS, source_schema

# source alias -> (dataset, the key it is joined on, the voters-side column holding that key)
JOINS = {"va": ("voter_addresses", "voter_id", ("v", "voter_id")),
         "a": ("addresses", "address_key", ("va", "address_key")),
         "g": ("geocodes", "address_key", ("va", "address_key")),
         "vh": ("voter_households", "voter_id", ("v", "voter_id")),
         "h": ("households", "household_id", ("vh", "household_id")),
         "c": ("voter_cohorts", "voter_id", ("v", "voter_id"))}


SAMPLE_ROWS = 16_384  # rows _few_values looks at
JOIN_KEYS = {key for _, key, (_, column) in JOINS.values()} | {column for _, _, (_, column) in JOINS.values()}


def read_source(path, dataset: str, columns: list[str]) -> dict[str, pa.Array | "CompactMap"]:
    """The named columns of an upstream file, each one contiguous array (a take from a chunked
    column would concatenate it every time), read one column at a time so that only one column
    is ever held twice; a map column as a CompactMap; a column the declared schema has but the
    file lacks (an older file) is typed nulls, as tables.register_sources gives it."""
    handle = pq.ParquetFile(path)
    fields = {f.name: f for f in handle.schema_arrow}
    declared = source_schema(dataset)
    rows = handle.metadata.num_rows
    found: dict = {}
    for name in columns:
        if name not in fields:
            kind = declared.field(name).type if declared is not None and name in declared.names else pa.null()
            found[name] = pa.nulls(rows, kind)
        elif pa.types.is_map(fields[name].type):
            found[name] = CompactMap.read(handle, name)
        else:
            coded = [name] if name not in JOIN_KEYS and _few_values(handle, name, fields[name].type) else []
            column = pq.read_table(path, columns=[name], read_dictionary=coded).column(0)
            found[name] = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            del column
    pa.default_memory_pool().release_unused()
    return found


def _few_values(handle: pq.ParquetFile, name: str, kind: pa.DataType) -> bool:
    """A text column with few distinct values in its first rows (codes, bands, cities) is
    held dictionary-encoded: a fraction of the memory, and the final cast decodes the rows taken."""
    if not pa.types.is_string(kind) or handle.metadata.num_rows < 10_000:
        return False
    # the first rows only: decoding the whole first group again cost more than the decision
    sample = next(handle.iter_batches(batch_size=SAMPLE_ROWS, row_groups=[0], columns=[name])).column(0)
    return pc.count_distinct(sample).as_py() <= max(len(sample) // 100, 1)


def keys_unique(column: pa.Array) -> bool:
    """One row per non-null key: the SQL joins would repeat voters otherwise."""
    first = pc.index_in(column, value_set=column, skip_nulls=True)  # each key's first row
    rows = pa.array(np.arange(len(column), dtype=np.int32))
    return pc.all(pc.or_kleene(pc.equal(first, rows), pc.is_null(column))).as_py() is not False


def enriched_columns(voter_columns: list[str], cohort_columns: list[str]) -> list[tuple[str, str, str]]:
    """(alias, source column, output column) in voters_enriched_sql's order; alias '' = constant."""
    from voterpipe.warehouse.enriched import LOOKUP_COLUMNS

    items = [("", "state", "state"), ("", "snapshot", "snapshot")]
    items += [("v", c, c) for c in schema.VOTERS.names if c not in ("state", "snapshot")]
    items += list(LOOKUP_COLUMNS)
    items += [("c", c, c) for c in schema.VOTERS_ENRICHED_COHORT_LABELS]
    taken = set(schema.VOTERS_ENRICHED.names)
    items += [("v", c, c) for c in voter_columns if c not in taken and c not in schema.VOTERS.names]
    items += [("c", c, c) for c in cohort_columns
              if c not in taken and c not in schema.VOTER_COHORTS.names and c not in voter_columns]
    return items


DATASETS = {"v": "voters", **{alias: spec[0] for alias, spec in JOINS.items()}}


def wanted_columns(columns: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    """Per source alias, the columns the join reads: its output columns and the join keys."""
    wanted: dict[str, list[str]] = {"v": ["voter_id"]}
    for alias, (_, key, _) in JOINS.items():
        wanted.setdefault(alias, []).append(key)
    for alias, source, _ in columns:
        if alias and source not in wanted[alias]:
            wanted[alias].append(source)
    for alias, (_, _, (side, column)) in JOINS.items():
        if column not in wanted[side]:
            wanted[side].append(column)
    return wanted


def _row_lookup(probe: pa.Array, keys: pa.Array) -> pa.Array | None:
    """Row of each probe value among `keys` (null where absent or null); None when the two are
    the same column, row for row (no lookup needed)."""
    if len(probe) == len(keys) and probe.equals(keys):
        return None
    return pc.index_in(probe, value_set=keys, skip_nulls=True)


class EnrichedJoin:
    """The upstream tables of one (state, snapshot) in memory, looked up row by row."""

    def __init__(self, paths: dict, state: str, snapshot: date, voter_columns: list[str],
                 cohort_columns: list[str], tables: dict | None = None, preset_rows: dict | None = None):
        """`tables` (alias -> columns, as read_source gives them) replaces reading `paths`: a
        block of voters with their rows of the other tables (enriched_blocks), which may give
        `preset_rows`, each voter's row of an address- or household-keyed table found beforehand."""
        self.state, self.snapshot = state, snapshot
        self.columns = enriched_columns(voter_columns, cohort_columns)
        self.wanted = wanted_columns(self.columns)
        self.datasets = DATASETS
        self.tables = tables if tables is not None else {
            alias: read_source(paths[DATASETS[alias]], DATASETS[alias], columns)
            for alias, columns in self.wanted.items()}
        self._rows: dict | None = None
        self.preset_rows = preset_rows or {}

    def unique(self) -> bool:
        """Whether every joined table has one row per key (else the SQL path explains the repeat);
        a table listing the voters row for row is (voters.parquet repeats no voter_id)."""
        rows = self.rows()
        return all(keys_unique(self.tables[alias][UNIQUE_KEYS[self.datasets[alias]]])
                   for alias in JOINS if not (rows[alias] is None and JOINS[alias][2] == ("v", "voter_id")))

    def rows(self) -> dict[str, pa.Array | None]:
        """Per alias, the row of each voter (voters.parquet order) in that table; None = the same row."""
        if self._rows is not None:
            return self._rows
        found: dict[str, pa.Array | None] = {"v": None}
        for alias in ("va", "vh", "c", "a", "g", "h"):  # a, g, h look up through va and vh
            if alias in self.preset_rows:
                found[alias] = self.preset_rows[alias]
                continue
            _, key, (side, column) = JOINS[alias]
            probe = self.tables[side][column]
            if found[side] is not None:
                probe = probe.take(found[side])
            found[alias] = _row_lookup(probe, self.tables[alias][key])
        self._rows = found
        return found

    def parts(self, rows_per_part: int) -> Iterator[pa.Table]:
        """voters_enriched in voter_id order, `rows_per_part` voters at a time."""
        order = pc.sort_indices(self.tables["v"]["voter_id"])
        rows = self.rows()
        names = [target for _, _, target in self.columns]
        for start in range(0, max(len(order), 1), max(rows_per_part, 1)):
            part = order.slice(start, rows_per_part)
            arrays = []
            for alias, source, _ in self.columns:
                if not alias:
                    arrays.append(self._constant(source, len(part)))
                    continue
                where = part if rows[alias] is None else rows[alias].take(part)
                arrays.append(self.tables[alias][source].take(where))
            yield pa.table(arrays, names=names)

    def _constant(self, name: str, length: int) -> pa.Array:
        if name == "state":
            return pa.array([self.state.replace("'", "")] * length, pa.string())
        return pa.array([self.snapshot] * length, pa.date32())


class CompactMap:
    """A map column held as offsets plus codes of its keys and values (a state's extra columns
    repeat a few keys and values on every voter: a tenth of the memory); take() gives back a
    plain MapArray."""

    def __init__(self, type_: pa.DataType):
        self.type = type_
        self.offsets, self.valid, self.keys, self.items = [np.zeros(1, np.int64)], [], _Codes(), _Codes()

    @classmethod
    def read(cls, handle: pq.ParquetFile, name: str) -> "CompactMap":
        """The map column of a Parquet file, one row group at a time."""
        held = cls(handle.schema_arrow.field(name).type)
        for group in range(handle.num_row_groups):
            held.append(handle.read_row_group(group, columns=[name]).column(0).combine_chunks())
        return held.finish()

    def finish(self) -> "CompactMap":
        """After the last append."""
        self.offsets = np.concatenate(self.offsets)
        self.valid = np.concatenate(self.valid) if self.valid else np.zeros(0, bool)
        self.keys, self.items = self.keys.done(), self.items.done()
        return self

    def append(self, column: pa.MapArray) -> None:
        offsets = column.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        self.offsets.append(offsets[1:] - offsets[0] + self.offsets[-1][-1])
        self.valid.append(np.ones(len(column), bool) if column.null_count == 0 else
                          np.asarray(column.is_valid().to_pylist(), dtype=bool))
        self.keys.append(column.keys)
        self.items.append(column.items)

    def take(self, rows: pa.Array) -> pa.Array:
        if rows.null_count:  # a voter with no row here: a null map (only voters are taken today)
            raise ValueError("CompactMap.take: null rows are not supported")
        rows = rows.to_numpy(zero_copy_only=False).astype(np.int64)
        starts = self.offsets[rows]
        lengths = self.offsets[rows + 1] - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        entries = pa.array(np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1]))
        valid = self.valid[rows]
        mask = None if valid.all() else pa.array(~valid)
        return pa.MapArray.from_arrays(pa.array(offsets.astype(np.int32)), self.keys.take(entries),
                                       self.items.take(entries), type=self.type, mask=mask)


class _Codes:
    """Strings as codes into the distinct values seen so far, built chunk by chunk."""

    def __init__(self):
        self.values = pa.array([], pa.string())
        self.codes: list[pa.Array] | pa.Array = []

    def append(self, chunk: pa.Array) -> None:
        seen = pc.unique(chunk.drop_null())
        self.values = pa.concat_arrays([self.values, seen.filter(pc.invert(pc.is_in(seen, value_set=self.values)))])
        self.codes.append(pc.index_in(chunk, value_set=self.values, skip_nulls=True))

    def done(self) -> "_Codes":
        size = len(self.values)
        small = pa.int8() if size < 2 ** 7 else pa.int16() if size < 2 ** 15 else pa.int32()
        self.codes = pa.concat_arrays([c.cast(small) for c in self.codes]) if self.codes else pa.array([], small)
        return self

    def take(self, entries: pa.Array) -> pa.Array:
        return self.values.take(self.codes.take(entries))
