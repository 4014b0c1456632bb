"""Households of a large roll in bounded memory: the members split into buckets by building,
each bucket built with build_households, the results merged into what one whole build gives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import schema
from voterpipe.household_merge import HouseholdTally, RowGroupWriter, Sink, merge_buckets, write_bucket
from voterpipe.households import GEOGRAPHY_COLUMNS, GroupQuartersRule, build_households, household_keys
from voterpipe.memory import release_memory

VOTER_COLUMNS = ["voter_id", "status", "last_name", "party", "birth_date", "birth_year", "registered_on"]
ADDRESS_COLUMNS = ["address_key", "building_key", "unit_type", "unit_number"]
LINK_COLUMNS = ["voter_id", "address_key", "building_key", "parse_status"]
GEOCODE_COLUMNS = ["address_key", "status", *GEOGRAPHY_COLUMNS]

WHOLE_VOTERS = 1024 * 1024  # a roll up to this size is built whole, as before (the fastest way)
BUCKET_VOTERS = 500_000  # a larger roll: about this many voters per bucket
READ_ROWS = 1 << 18  # rows per window read from an input
SPILL_ROWS = 1 << 16  # record batch size of the spill files


@dataclass(frozen=True)
class HouseholdInputs:
    voters: pa.Table | Path
    voter_addresses: pa.Table | Path
    addresses: pa.Table | Path
    geocodes: pa.Table | Path


def bucket_count(voters: int) -> int:
    """1 (build whole) up to WHOLE_VOTERS voters, else one bucket per BUCKET_VOTERS or part."""
    return 1 if voters <= WHOLE_VOTERS else math.ceil(voters / BUCKET_VOTERS)


def row_count(source: pa.Table | Path) -> int:
    return source.num_rows if isinstance(source, pa.Table) else pq.read_metadata(source).num_rows


def column_names(source: pa.Table | Path) -> list[str]:
    return source.column_names if isinstance(source, pa.Table) else pq.read_schema(source).names


def windows(source: pa.Table | Path, columns: list[str], rows: int | None = None) -> Iterator[pa.Table]:
    """The source's columns in consecutive tables of exactly `rows` (READ_ROWS) rows, the last
    one shorter."""
    rows = rows or READ_ROWS
    if isinstance(source, pa.Table):
        batches = source.select(columns).to_batches(max_chunksize=rows)
    else:
        batches = pq.ParquetFile(source).iter_batches(batch_size=rows, columns=columns)
    held, count = [], 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(held).combine_chunks()
            yield table.slice(0, rows)
            rest = table.slice(rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, schema=held[0].schema).combine_chunks()


class LinksOutOfOrder(ValueError):
    """voter_addresses does not list voters.parquet's voters in its order."""


def text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array if array.type == pa.string() else array.cast(pa.string())


def key_hashes(keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the non-null keys, a 64-bit hash of each one's UTF-8 bytes): FNV-1a over its
    little-endian 8-byte words (the last one zero-padded) after its length, then MurmurHash3's
    finish. A key's hash never depends on the other keys read with it."""
    keys = text(keys)
    if keys.null_count:
        valid = np.flatnonzero(pc.is_valid(keys).to_numpy(zero_copy_only=False))
        keys = keys.take(pa.array(valid))  # no null slots
    else:
        valid = np.arange(len(keys))
    if not len(keys):
        return valid, np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32, count=len(keys) + 1, offset=keys.offset * 4)
    data = np.frombuffer(keys.buffers()[2], dtype=np.uint8) if keys.buffers()[2] else np.zeros(1, np.uint8)
    lengths = np.diff(offsets)
    prime = np.uint64(1099511628211)
    hashes = (np.uint64(14695981039346656037) ^ lengths.astype(np.uint64)) * prime
    if lengths.min() == lengths.max():  # equal lengths (hex digests): the words are one reshape away
        matrix = np.zeros((len(keys), -(-int(lengths[0]) // 8) * 8), dtype=np.uint8)
        matrix[:, :lengths[0]] = data[offsets[0]:offsets[-1]].reshape(len(keys), int(lengths[0]))
        for word in matrix.view("<u8").astype(np.uint64).T:
            hashes = (hashes ^ word) * prime
    else:
        starts = offsets[:-1].astype(np.int64)
        for first in range(0, int(lengths.max()), 8):
            live = np.flatnonzero(lengths > first)
            word = np.zeros(len(live), dtype=np.uint64)
            for byte in range(8):
                at = starts[live] + first + byte
                value = np.where(lengths[live] > first + byte, data[np.minimum(at, len(data) - 1)], 0)
                word |= value.astype(np.uint64) << np.uint64(8 * byte)
            hashes[live] = (hashes[live] ^ word) * prime
    for factor in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):  # every input bit reaches the high bits
        hashes = (hashes ^ (hashes >> np.uint64(33))) * np.uint64(factor)
    return valid, hashes ^ (hashes >> np.uint64(33))


def bucket_numbers(keys: pa.Array, buckets: int) -> np.ndarray:
    """Each key's bucket (0 .. buckets - 1) from its key_hashes; a null key's is 0."""
    numbers = np.zeros(len(keys), dtype=np.int64)
    valid, hashes = key_hashes(keys)
    numbers[valid] = (hashes >> np.uint64(32)) % np.uint64(buckets)  # the well-mixed high bits
    return numbers


class SpillFiles:
    """Arrow IPC files in a directory, one per bucket, appended to a table at a time."""

    def __init__(self, directory: Path, prefix: str):
        self.directory, self.prefix, self.writers = directory, prefix, {}

    def path(self, bucket: int) -> Path:
        return self.directory / f"{self.prefix}-{bucket}.arrow"

    def append(self, bucket: int, table: pa.Table) -> None:
        if bucket not in self.writers:
            self.writers[bucket] = pa.ipc.new_file(str(self.path(bucket)), table.schema)
        self.writers[bucket].write_table(table, max_chunksize=SPILL_ROWS)

    def close(self) -> list[int]:
        for writer in self.writers.values():
            writer.close()
        return sorted(self.writers)

    def read(self, bucket: int, columns: list[str] | None = None) -> pa.Table | None:
        if not self.path(bucket).exists():
            return None
        with pa.OSFile(str(self.path(bucket))) as handle:
            table = pa.ipc.open_file(handle).read_all()
        return table if columns is None else table.select(columns)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by a sort (numpy's hash-based unique is slower on many 64-bit values)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


class KeyBuckets:
    """Which bucket each household's address_key is in: per household 8 bytes, the key's hash's
    high 48 bits and the bucket's 16, kept sorted (a hash households of two buckets share sends
    a key to both, where index_in matches the right one only)."""

    def __init__(self):
        self.packed: list[np.ndarray] = []

    def add(self, keys: pa.Array, buckets: np.ndarray) -> None:
        _, hashes = key_hashes(keys)  # keys are non-null: household ids
        self.packed.append(sorted_unique(hashes >> np.uint64(16) << np.uint64(16) | buckets.astype(np.uint64)))

    def freeze(self) -> None:
        self.sorted = sorted_unique(np.concatenate(self.packed)) if self.packed else np.zeros(0, np.uint64)
        self.packed = []

    def rows_by_bucket(self, keys: pa.Array) -> dict[int, np.ndarray]:
        """The rows (ascending) of `keys` in each bucket, for the keys of households."""
        valid, hashes = key_hashes(keys)
        order = np.argsort(hashes)  # sorted needles: a binary search that stays in cache
        needles = hashes[order] >> np.uint64(16) << np.uint64(16)
        left = np.searchsorted(self.sorted, needles, "left")
        counts = np.searchsorted(self.sorted, needles | np.uint64(0xFFFF), "right") - left
        rows = np.repeat(valid[order], counts)
        slots = np.repeat(left, counts) + np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        numbers = (self.sorted[slots] & np.uint64(0xFFFF)).astype(np.int64)
        order = np.argsort(numbers * (len(keys) + 1) + rows)
        rows, numbers = rows[order], numbers[order]
        edges = np.flatnonzero(np.diff(numbers)) + 1
        return {int(n[0]): r for n, r in zip(np.split(numbers, edges), np.split(rows, edges)) if len(n)}


def split_members(inputs: HouseholdInputs, buckets: int, members: SpillFiles, voter_households: Sink,
                  keys: KeyBuckets) -> dict:
    """One pass over voters and voter_addresses: writes VOTER_HOUSEHOLDS row groups and spills each
    household member's voter and link columns to its bucket (a hash of its building_key).
    Raises LinksOutOfOrder (before the last row group is written) unless both list the same voters
    in the same order. Returns the voter counts."""
    if row_count(inputs.voters) != row_count(inputs.voter_addresses):
        raise LinksOutOfOrder("voters and voter_addresses have different row counts")
    out = RowGroupWriter(voter_households)
    voters_seen = members_seen = 0
    for voters, links in zip(windows(inputs.voters, VOTER_COLUMNS), windows(inputs.voter_addresses, LINK_COLUMNS)):
        if not links["voter_id"].equals(voters["voter_id"]):
            raise LinksOutOfOrder(f"voter_addresses differs from voters.parquet's voter order after row {voters_seen}")
        household, building = household_keys(text(voters["status"]), text(links["address_key"]),
                                             text(links["building_key"]), text(links["parse_status"]))
        out.add(pa.table({"voter_id": text(voters["voter_id"]), "household_id": household,
                          "building_key": building}, schema=schema.VOTER_HOUSEHOLDS))
        voters_seen += voters.num_rows
        rows = np.flatnonzero(pc.is_valid(household).to_numpy(zero_copy_only=False))
        members_seen += len(rows)
        table = pa.Table.from_arrays([*voters.columns, *links.columns[1:]], [*VOTER_COLUMNS, *LINK_COLUMNS[1:]])
        numbers = bucket_numbers(building.take(pa.array(rows)), buckets)
        keys.add(household.take(pa.array(rows)), numbers)
        for bucket in np.unique(numbers):
            members.append(int(bucket), table.take(pa.array(rows[numbers == bucket])))
        del table, household, building
        release_memory()  # else the freed windows pile up in the allocators over a long roll
    out.close(schema.VOTER_HOUSEHOLDS.empty_table())
    return {"voters": voters_seen, "voters_in_households": members_seen}


def split_by_key(source: pa.Table | Path, columns: list[str], keys: KeyBuckets, spill: SpillFiles) -> None:
    """One pass over a table keyed by address_key: each row whose key is a household's goes to
    that household's bucket, in source order."""
    names = [c for c in columns if c in column_names(source)]
    for window in windows(source, names):
        for bucket, rows in keys.rows_by_bucket(window["address_key"]).items():
            spill.append(bucket, window.take(pa.array(rows)))
        del window
        release_memory()


def with_null_row(found: pa.Table | None, source: pa.Table | Path, columns: list[str]) -> pa.Table:
    """A bucket's rows of an address table, plus one row of nulls: its null key matches no
    household, and a lookup never sees an empty table."""
    fields = source.schema if isinstance(source, pa.Table) else pq.read_schema(source)
    wanted = pa.schema([fields.field(c) for c in columns if c in fields.names])
    nulls = pa.table({f.name: pa.nulls(1, f.type) for f in wanted}, schema=wanted)
    return nulls if found is None else pa.concat_tables([found, nulls]).combine_chunks()


def as_frame(table: pa.Table):
    """pandas copy of a table the caller no longer uses (its Arrow buffers released meanwhile)."""
    return table.to_pandas(split_blocks=True, self_destruct=True)


@dataclass
class BucketFiles:
    members: SpillFiles
    addresses: SpillFiles
    geocodes: SpillFiles


def build_bucket(bucket: int, spill: BucketFiles, inputs: HouseholdInputs, snapshot: date,
                 rule: GroupQuartersRule, code_forms: dict | None) -> pa.Table:
    """HOUSEHOLDS of one bucket (sorted by household_id), by build_households given the bucket's
    members and its households' addresses and geocodes."""
    addresses = with_null_row(spill.addresses.read(bucket), inputs.addresses, ADDRESS_COLUMNS[:1] + ADDRESS_COLUMNS[2:])
    geocodes = with_null_row(spill.geocodes.read(bucket), inputs.geocodes, GEOCODE_COLUMNS) \
        if row_count(inputs.geocodes) else None  # none at all: build_households' no-geocode branch
    members = spill.members.read(bucket)
    links = members.select(LINK_COLUMNS[1:])
    voters = as_frame(members.select(VOTER_COLUMNS))
    del members
    links = as_frame(links)
    links.insert(0, "voter_id", voters["voter_id"].array)
    households, _ = build_households(voters, links, as_frame(addresses),
                                     None if geocodes is None else as_frame(geocodes), snapshot, rule, code_forms)
    del voters, links
    return schema.conform(pa.Table.from_pandas(households, preserve_index=False), schema.HOUSEHOLDS)


def split_inputs(inputs: HouseholdInputs, buckets: int, spill: Path, voter_households: Sink) -> tuple:
    """(BucketFiles, voter counts): the members, addresses and geocodes spilled by bucket."""
    files = BucketFiles(*(SpillFiles(spill, name) for name in ("members", "addresses", "geocodes")))
    keys = KeyBuckets()
    try:
        voters = split_members(inputs, buckets, files.members, voter_households, keys)
        keys.freeze()
        split_by_key(inputs.addresses, ADDRESS_COLUMNS[:1] + ADDRESS_COLUMNS[2:], keys, files.addresses)
        split_by_key(inputs.geocodes, GEOCODE_COLUMNS, keys, files.geocodes)
    finally:
        for spilled in (files.members, files.addresses, files.geocodes):
            spilled.close()
    return files, voters


def build_households_in_buckets(inputs: HouseholdInputs, snapshot: date, rule: GroupQuartersRule,
                                code_forms: dict | None, spill: Path, households: Sink,
                                voter_households: Sink, buckets: int,
                                progress: Callable[[str], None] = lambda message: None) -> dict:
    """Write HOUSEHOLDS and VOTER_HOUSEHOLDS row groups to the sinks exactly as one
    build_households of the whole roll orders them; return the manifest counts. spill is an empty
    directory for the bucket files. Raises LinksOutOfOrder (see split_members)."""
    files, voters = split_inputs(inputs, buckets, spill, voter_households)
    progress(f"{voters['voters']} voters in {buckets} buckets")
    release_memory()
    built = []
    for bucket in range(buckets):
        if not files.members.path(bucket).exists():
            continue
        table = build_bucket(bucket, files, inputs, snapshot, rule, code_forms)
        for spilled in (files.members, files.addresses, files.geocodes):
            spilled.path(bucket).unlink(missing_ok=True)
        built.append(spill / f"households-{bucket}.parquet")
        write_bucket(table, built[-1])
        progress(f"bucket {bucket + 1} of {buckets}: {table.num_rows} households")
        del table
        release_memory()
    tally = HouseholdTally()
    merge_buckets(built, households, tally)
    return tally.counts(voters["voters"], voters["voters_in_households"])
