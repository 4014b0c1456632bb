"""Normalise a voter file in bounded memory: voters are split by ZIP5 into buckets of about
BUCKET_VOTERS (every cache key and address key holds its ZIP5, so no key spans two buckets), each
bucket is normalised alone, and the outputs are merged back in voter order from spill files."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import schema
from voterpipe.addresses.cache import AddressCache
from voterpipe.addresses.keyhash import StringIndex
from voterpipe.addresses.normalise import SEP, normalise_rows, _zip5
from voterpipe.addresses.parse import RULES_VERSION
from voterpipe.addresses.spill import BATCH_ROWS, RUN_BATCH_ROWS, Spill, merge_runs

BUCKET_VOTERS = 400_000  # bounds the working memory; the cost per bucket is small
MERGE_WINDOW = 262_144  # voter rows per merged output piece
ROW = "voter_row"
Progress = Callable[[float, str], None]


def _zip_of_voters(batch: pa.RecordBatch | pa.Table) -> pa.Array:
    """The ZIP5 each voter's cache key ends with ("" when invalid or absent)."""
    if "res_zip5" not in batch.schema.names:
        return pa.array([""] * batch.num_rows, pa.string())
    column = batch.column("res_zip5")
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    return pc.fill_null(_zip5(column), "")


def _zip_of_cache_keys(keys: pa.Array) -> pa.Array:
    """The ZIP5 a cache key ends with: "" when it ends with the separator, else its last five."""
    tail = pc.utf8_slice_codeunits(keys, -5)
    return pc.if_else(pc.ends_with(keys, SEP), pa.scalar("", pa.string()), tail)


def assign_buckets(zip_counts: Counter, voters: int, bucket_voters: int = BUCKET_VOTERS) -> dict[str, int]:
    """ZIP5 -> bucket: the fewest buckets (from voters / bucket_voters up) in which no bucket
    holds more than bucket_voters, or than the largest ZIP (a ZIP is never split)."""
    largest = max(zip_counts.values(), default=0)
    buckets = max(1, min(255, math.ceil(voters / bucket_voters)))
    while True:
        out, load = _greedy(zip_counts, buckets)
        if max(load) <= max(bucket_voters, largest) or buckets == 255:
            return out
        buckets += 1


def _greedy(zip_counts: Counter, buckets: int) -> tuple[dict[str, int], list[int]]:
    """Largest ZIPs first, each into the least loaded bucket."""
    load = [0] * buckets
    out = {}
    for zip5, count in sorted(zip_counts.items(), key=lambda item: (-item[1], item[0])):
        target = int(np.argmin(load))
        out[zip5] = target
        load[target] += count
    return out, load


def _bucket_numbers(zips: pa.Array, zip_values: pa.Array, bucket_of_zip: np.ndarray) -> np.ndarray:
    """Each zip's bucket, or -1 for a ZIP no voter has."""
    found = pc.index_in(zips, value_set=zip_values)
    index = pc.fill_null(found, -1).to_numpy(zero_copy_only=False)
    return np.where(index >= 0, bucket_of_zip[np.maximum(index, 0)], -1)


def _split(batches, bucket_numbers: Callable, spills: list[Spill], row_column: str | None = None) -> int:
    """Append each batch's rows to its bucket's spill (with their row numbers); return the rows."""
    start = 0
    for batch in batches:
        table = pa.Table.from_batches([batch])
        if row_column:
            table = table.append_column(row_column, pa.array(np.arange(start, start + len(table), dtype=np.int64)))
        numbers = bucket_numbers(table)
        for b in np.unique(numbers[numbers >= 0]):
            spills[b].write(table.filter(pa.array(numbers == b)))
        start += len(table)
    return start


class _CacheSlice:
    """One bucket's rows of the address cache, with the lookups normalise_rows makes."""

    def __init__(self, table: pa.Table | None):
        self._table = table if table is not None else pa.schema([]).empty_table()
        self._index = None

    def table(self) -> pa.Table:
        return self._table

    def positions(self, keys: pa.Array) -> np.ndarray:
        if self._index is None:
            self._index = StringIndex(self._table["cache_key"].combine_chunks())
        return self._index.positions(keys.cast(pa.string()))


def normalise_voter_file(voters_path: Path, columns: list[str], state: str, cache: AddressCache,
                         outputs: dict[str, Path], writer: Callable, spill_dir: Path, processes: int = 0,
                         progress: Progress | None = None, bucket_voters: int | None = None) -> dict:
    """normalise_addresses over the voters Parquet file, writing outputs['addresses'] and
    outputs['voter_addresses'] with writer(path, schema) -> ParquetWriter, and appending new
    strings to `cache` in one part; returns the stats normalise_addresses gives."""
    source = pq.ParquetFile(voters_path)
    voters = source.metadata.num_rows
    zip_counts: Counter = Counter()
    for batch in source.iter_batches(BATCH_ROWS * 4, columns=[c for c in columns if c == "res_zip5"] or columns[:1]):
        values = pc.value_counts(_zip_of_voters(batch))
        zip_counts.update(dict(zip(values.field(0).to_pylist(), values.field(1).to_pylist())))
    bucket_of = assign_buckets(zip_counts, voters, bucket_voters or BUCKET_VOTERS)
    zip_values = pa.array(list(bucket_of), pa.string())
    bucket_of_zip = np.array(list(bucket_of.values()) or [0], dtype=np.int64)
    buckets = max(bucket_of.values(), default=0) + 1
    spill_dir = Path(spill_dir)
    spills = {name: [Spill(spill_dir / f"{name}-{b}.arrow", BATCH_ROWS if name in ("voters", "cache") else RUN_BATCH_ROWS)
                     for b in range(buckets)] for name in ("voters", "cache", "links", "keyed", "other", "new")}
    try:
        _split(source.iter_batches(BATCH_ROWS, columns=columns),
               lambda t: _bucket_numbers(_zip_of_voters(t), zip_values, bucket_of_zip), spills["voters"], ROW)
        for s in spills["voters"]:
            s.close()
        _split((b for table in cache.slices() for b in table.to_batches()),
               lambda t: _bucket_numbers(_zip_of_cache_keys(t["cache_key"].combine_chunks()), zip_values,
                                         bucket_of_zip), spills["cache"])
        for s in spills["cache"]:
            s.close()
        pa.default_memory_pool().release_unused()  # the split's buffers, before the first bucket
        totals: dict = {}
        for b in range(buckets):
            stats = _normalise_bucket(b, spills, state, processes)
            totals = _add_stats(totals, stats)
            pa.default_memory_pool().release_unused()  # this bucket's buffers, before the next
            if progress:
                progress((b + 1) / buckets, f"bucket {b + 1} of {buckets}: {stats['voters']} voters, "
                                            f"{stats['parsed_new']} new strings parsed")
        for s in (s for group in spills.values() for s in group):
            s.close()
        _write_merged(outputs["voter_addresses"], schema.VOTER_ADDRESSES, writer,
                      merge_runs(spills["links"], ROW, voters, MERGE_WINDOW))
        _write_merged(outputs["addresses"], schema.ADDRESSES, writer,
                      (t for name in ("keyed", "other") for t in merge_runs(spills[name], ROW, voters, MERGE_WINDOW)))
        cache.append_stream(merge_runs(spills["new"], ROW, voters, MERGE_WINDOW))
    finally:
        for s in (s for group in spills.values() for s in group):
            s.close()
            s.path.unlink(missing_ok=True)
    totals["voters"] = voters
    totals["rules_version"] = RULES_VERSION
    return totals


def _normalise_bucket(b: int, spills: dict, state: str, processes: int) -> dict:
    voters = spills["voters"][b].read_all()
    if voters is None:
        return {}
    rows = voters[ROW].to_numpy()
    done = normalise_rows(voters.drop_columns([ROW]), state, _CacheSlice(spills["cache"][b].read_all()), processes)
    del voters
    result = done.result
    spills["links"][b].write(result.voter_addresses.append_column(ROW, pa.array(rows)))
    first = pa.array(rows[done.address_first])
    addresses = result.addresses.append_column(ROW, first)
    spills["keyed"][b].write(addresses.slice(0, done.keyed_addresses))
    spills["other"][b].write(addresses.slice(done.keyed_addresses))
    spills["new"][b].write(done.new_cache_rows.append_column(ROW, pa.array(rows[done.new_cache_first])))
    return result.stats


def _add_stats(total: dict, stats: dict) -> dict:
    """Sum per-bucket stats, keeping normalise_addresses' key order."""
    out = dict(total)
    for name, value in stats.items():
        if isinstance(value, dict):
            out[name] = {k: out.get(name, {}).get(k, 0) + v for k, v in value.items()}
        elif isinstance(value, (int, np.integer)) and name != "rules_version":
            out[name] = out.get(name, 0) + value
        else:
            out[name] = value
    return out


def _write_merged(path: Path, table_schema: pa.Schema, writer: Callable, tables) -> int:
    rows = 0
    with writer(path, table_schema) as out:
        for table in tables:
            out.write_table(schema.conform(table, table_schema))
            rows += table.num_rows
    return rows
