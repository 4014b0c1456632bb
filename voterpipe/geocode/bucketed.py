"""Geocode a snapshot's addresses in bounded memory: address keys are split into buckets of
contiguous key ranges (so writing the buckets in order gives the geocodes sorted by key), the
addresses, the cache and the voters' counties are spilled per bucket, and each bucket is geocoded
alone. Outputs, stats and match rates equal geocode_addresses_table's over the whole table."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import schema
from voterpipe.addresses.spill import BATCH_ROWS, RUN_BATCH_ROWS, Spill, merge_runs
from voterpipe.addresses.normalise import group_address_keys
from voterpipe.geocode.cache import GeocodeCache, first_rows, geocode_addresses_table, newest_per_key

BUCKET_ADDRESSES = 150_000  # bounds the working memory; the cost per bucket is small
ADDRESS_ROW = "address_row"
MERGE_WINDOW = 262_144  # address rows per merged piece
STAT_NAMES = ("addresses", "sendable", "not_sent", "cache_hits", "cache_misses")


def _prefixes(keys: pa.Array) -> np.ndarray:
    """The first two bytes of each key as one number (a shorter key pads with 0): keys in byte
    order have non-decreasing prefixes, so ranges of prefixes are ranges of keys."""
    keys = keys.cast(pa.binary())
    head = pc.binary_slice(keys, 0, 2)
    offsets = np.frombuffer(head.buffers()[1], dtype=np.int32, count=len(head) + 1, offset=head.offset * 4)
    data = np.frombuffer(head.buffers()[2], dtype=np.uint8) if head.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    first = np.where(lengths > 0, data[np.minimum(offsets[:-1], max(len(data) - 1, 0))] if len(data) else 0, 0)
    second = np.where(lengths > 1, data[np.minimum(offsets[:-1] + 1, max(len(data) - 1, 0))] if len(data) else 0, 0)
    return first.astype(np.int64) * 256 + second.astype(np.int64)


def key_ranges(histogram: np.ndarray, bucket_size: int) -> np.ndarray:
    """bucket_of_prefix: 65536 prefixes cut into contiguous ranges of about `bucket_size` keys."""
    total = int(histogram.sum())
    buckets = max(1, min(4096, math.ceil(total / bucket_size)))
    before = np.cumsum(histogram) - histogram  # keys with a smaller prefix
    return np.minimum((before * buckets) // max(total, 1), buckets - 1).astype(np.int64)


def bucket_numbers(keys: pa.Array, bucket_of_prefix: np.ndarray) -> np.ndarray:
    """Each key's bucket; -1 for a null key."""
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    numbers = bucket_of_prefix[_prefixes(pc.fill_null(keys, ""))]
    if keys.null_count:
        numbers[pc.is_null(keys).to_numpy(zero_copy_only=False)] = -1
    return numbers


def split(tables: Iterator[pa.Table], key: str, bucket_of_prefix: np.ndarray, spills: list[Spill],
          row_column: str | None = None) -> int:
    """Append each table's rows to the spill of their key's bucket (rows with a null key are
    dropped), numbering rows in `row_column` when given; return the rows seen."""
    start = 0
    for table in tables:
        if row_column:
            table = table.append_column(row_column, pa.array(np.arange(start, start + len(table), dtype=np.int64)))
        numbers = bucket_numbers(table[key], bucket_of_prefix)
        for b in np.unique(numbers[numbers >= 0]):
            spills[b].write(table.filter(pa.array(numbers == b)))
        start += len(table)
    for spill in spills:
        spill.close()
    return start


def parquet_tables(path: Path, columns: list[str] | None = None) -> Iterator[pa.Table]:
    for batch in pq.ParquetFile(path).iter_batches(BATCH_ROWS, columns=columns):
        yield pa.Table.from_batches([batch])


class _BucketCache:
    """One bucket's rows of a GeocodeCache (newest per key), with the calls geocoding makes;
    stores go to a spill with each row's address row, so that they reach the real cache in the
    order one whole-table run stores them (store_new_rows)."""

    def __init__(self, cache: GeocodeCache, rows: pa.Table | None, keys: pa.Array, address_rows: np.ndarray,
                 new_rows: Spill, one_part: bool):
        self.backend = cache.backend
        if rows is None:
            rows = schema.empty_table(schema.GEOCODES)
        # As GeocodeCache reads it: one part (the usual state after compact()) holds each key once.
        self._rows = rows if one_part else newest_per_key(rows)
        self._keys, self._address_rows, self._new_rows = keys, address_rows, new_rows

    def lookup_table(self, keys: pa.Array) -> pa.Table:
        if self._rows.num_rows == 0 or len(keys) == 0:
            return schema.empty_table(schema.GEOCODES)
        return self._rows.filter(pc.is_in(self._rows.column("address_key"), value_set=keys.cast(pa.string())))

    def store(self, results) -> None:
        table = results if isinstance(results, pa.Table) else pa.Table.from_pandas(results, preserve_index=False)
        table = schema.conform(table, schema.GEOCODES)
        if table.column("address_key").null_count:
            raise ValueError("GeocodeCache.store: every row needs an address_key")
        where = pc.index_in(table["address_key"], value_set=self._keys).to_numpy(zero_copy_only=False)
        self._new_rows.write(table.append_column(ADDRESS_ROW, pa.array(self._address_rows[where])))


def store_new_rows(cache: GeocodeCache, spills: list[Spill], addresses: int, chunk_rows: int | None) -> None:
    """Store the spilled new geocodes by address row, chunk_rows a part, as one whole-table
    run stores them."""
    for spill in spills:
        spill.close()
    for chunk in _rechunk(merge_runs(spills, ADDRESS_ROW, addresses, MERGE_WINDOW), chunk_rows or MERGE_WINDOW):
        cache.store(chunk)


class MatchCounts:
    """Counts of (group, geocode status), giving match_rates_aligned's answer without keeping
    one value per address."""

    def __init__(self):
        self.counts: Counter = Counter()

    def add(self, statuses: pa.Array, groups: pa.Array) -> None:
        groups = pc.fill_null(groups.cast(pa.string()), "unknown")
        groups, statuses = (a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in (groups, statuses))
        pairs = pa.table({"g": groups, "s": statuses.cast(pa.string())}).group_by(["g", "s"]).aggregate([([], "count_all")])
        for g, s, n in zip(*(pairs[c].to_pylist() for c in ("g", "s", "count_all"))):
            self.counts[(g, s)] += n

    def rates(self) -> dict:
        out = {}
        for group in sorted({g for g, _ in self.counts}):
            by_status = {s: int(self.counts.get((group, s), 0)) for s in schema.GEOCODE_STATUSES}
            total = sum(c for (g, _), c in self.counts.items() if g == group)
            sent = total - by_status["not_sent"]
            out[str(group)] = {"addresses": int(total), **by_status,
                               "match_rate": round(float(by_status["match"]) / sent, 6) if sent else None}
        return out


def geocode_in_buckets(addresses_path: Path, cache: GeocodeCache, backend, output: Path, writer: Callable,
                       spill_dir: Path, counties: Callable[[list[Spill], np.ndarray], None], *,
                       backend_stores: bool = False, chunk_rows: int | None = 250_000, progress=None,
                       bucket_size: int | None = None) -> dict:
    """geocode_addresses_table over the ADDRESSES Parquet file, writing the geocodes to `output`.
    counties(spills, bucket_of_prefix) spills (address_key, county_code) in voter order per bucket
    (spill_counties), or raises NotAligned, which this passes on before geocoding anything."""
    histogram = np.zeros(65536, dtype=np.int64)
    for table in parquet_tables(addresses_path, ["address_key"]):
        keys = table["address_key"].combine_chunks()
        histogram += np.bincount(_prefixes(keys.drop_null()), minlength=65536)
    bucket_of_prefix = key_ranges(histogram, bucket_size or BUCKET_ADDRESSES)
    buckets = int(bucket_of_prefix.max()) + 1
    spills = {name: [Spill(Path(spill_dir) / f"{name}-{b}.arrow", RUN_BATCH_ROWS if name == "new" else BATCH_ROWS)
                     for b in range(buckets)] for name in ("addresses", "cache", "county", "new")}
    try:
        addresses = split(parquet_tables(addresses_path), "address_key", bucket_of_prefix, spills["addresses"],
                          ADDRESS_ROW)
        one_part = cache.parts() == 1
        split(cache.part_tables(), "address_key", bucket_of_prefix, spills["cache"])
        counties(spills["county"], bucket_of_prefix)
        pa.default_memory_pool().release_unused()
        totals = dict.fromkeys(STAT_NAMES, 0)
        rows = 0
        status_counts: Counter = Counter()
        by_parse_status, by_county = MatchCounts(), MatchCounts()
        with writer(output, schema.GEOCODES) as out:
            for b in range(buckets):
                counties = _first_counties(spills["county"][b])
                geocodes, stats, parse_status = _geocode_bucket(
                    spills, b, cache, backend, backend_stores, chunk_rows, one_part)
                out.write_table(geocodes)
                rows += geocodes.num_rows
                for name in STAT_NAMES:
                    totals[name] += stats[name]
                status_counts.update(dict(zip(*[c.to_pylist() for c in pc.value_counts(geocodes["status"]).flatten()])))
                by_parse_status.add(geocodes["status"].combine_chunks(), parse_status)
                by_county.add(geocodes["status"].combine_chunks(), _county(counties, geocodes))
                del geocodes
                pa.default_memory_pool().release_unused()  # this bucket's buffers, before the next
                if progress is not None:
                    progress((b + 1) / buckets, f"bucket {b + 1} of {buckets}: {stats['cache_misses']} geocoded, "
                                                f"{stats['cache_hits']} from cache")
        store_new_rows(cache, spills["new"], addresses, chunk_rows)
    finally:
        for spill in (s for group in spills.values() for s in group):
            spill.close()
            spill.path.unlink(missing_ok=True)
    return {"rows": rows, "stats": totals, "status_counts": {s: int(status_counts.get(s, 0)) for s in schema.GEOCODE_STATUSES},
            "match_rate_by_parse_status": by_parse_status.rates(), "match_rate_by_county": by_county.rates()}


def _geocode_bucket(spills: dict, b: int, cache: GeocodeCache, backend, backend_stores: bool,
                    chunk_rows: int | None, one_part: bool) -> tuple[pa.Table, dict, pa.Array]:
    """One bucket's geocodes (sorted by key), stats, and each geocode's parse status."""
    addresses = spills["addresses"][b].read_all()
    if addresses is None:
        return schema.empty_table(schema.GEOCODES), dict.fromkeys(STAT_NAMES, 0), pa.array([], pa.string())
    rows = addresses[ADDRESS_ROW].to_numpy()
    addresses = addresses.drop_columns([ADDRESS_ROW])
    keys = addresses["address_key"].combine_chunks()
    bucket_cache = _BucketCache(cache, spills["cache"][b].read_all(), keys, rows, spills["new"][b], one_part)
    geocodes, stats = geocode_addresses_table(addresses, bucket_cache, backend, backend_stores=backend_stores,
                                              chunk_rows=chunk_rows, row_numbers=rows)
    first = pc.index_in(geocodes["address_key"], value_set=keys, skip_nulls=True)
    if "parse_status" in addresses.column_names:
        parse_status = addresses["parse_status"].combine_chunks().take(first)
    else:
        parse_status = pa.nulls(geocodes.num_rows, pa.string())
    return schema.conform(geocodes, schema.GEOCODES), stats, parse_status


def _first_counties(spill: Spill) -> pa.Table | None:
    """(address_key, county_code) of each key's first voter in a bucket's county spill."""
    links = spill.read_all()
    if links is None:
        return None
    return links.take(first_rows(links["address_key"].combine_chunks()))


def _county(counties: pa.Table | None, geocodes: pa.Table) -> pa.Array:
    """Each geocode's county: its first voter's county_code; else the matched county FIPS."""
    fallback = geocodes.column("county_fips").combine_chunks()
    if counties is None:
        county = pa.nulls(geocodes.num_rows, pa.string())
    else:
        first = pc.index_in(geocodes["address_key"], value_set=counties["address_key"].combine_chunks(),
                            skip_nulls=True)
        county = counties["county_code"].combine_chunks().cast(pa.string()).take(first)
    return pc.fill_null(pc.coalesce(county, fallback.cast(pa.string())), "unknown")


class NotAligned(Exception):
    """voter_addresses does not follow voters.parquet row for row."""


def _rechunk(tables: Iterator[pa.Table], size: int) -> Iterator[pa.Table]:
    """The same rows as tables of exactly `size` rows (the last may be shorter)."""
    pending: list[pa.Table] = []
    held = 0
    for table in tables:
        pending.append(table)
        held += table.num_rows
        while held >= size:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, size)
            rest = whole.slice(size)
            pending, held = [rest], rest.num_rows
    if held:
        yield pa.concat_tables(pending)


def spill_counties(links_path: Path, voters_path: Path, spills: list[Spill], bucket_of_prefix: np.ndarray) -> None:
    """Spill (address_key, county_code) of every voter, in voter order, to its key's bucket;
    raise NotAligned when voter_addresses and voters do not list the same voters in order."""
    links = _rechunk(parquet_tables(links_path, ["voter_id", "address_key"]), BATCH_ROWS)
    voters = _rechunk(parquet_tables(voters_path, ["voter_id", "county_code"]), BATCH_ROWS)
    if pq.read_metadata(links_path).num_rows != pq.read_metadata(voters_path).num_rows:
        raise NotAligned()

    def pairs() -> Iterator[pa.Table]:
        for link, voter in zip(links, voters):
            if not link["voter_id"].equals(voter["voter_id"]):
                raise NotAligned()
            pair = pa.table({"address_key": link["address_key"], "county_code": voter["county_code"]})
            _, first = group_address_keys(pair["address_key"].combine_chunks())
            yield pair.take(pa.array(np.sort(first)))  # a key's later voters never count

    split(pairs(), "address_key", bucket_of_prefix, spills)
