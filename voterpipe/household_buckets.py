"""Households of a large roll in bounded memory: the members split into buckets by building,
each bucket built with build_households, the results merged into what one whole build gives."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import schema
from voterpipe.households import (GEOGRAPHY_COLUMNS, GroupQuartersRule, build_households, household_keys,
                                  with_geography)
from voterpipe.partitioning import partition_numbers

VOTER_COLUMNS = ["voter_id", "status", "last_name", "party", "birth_date", "birth_year", "registered_on"]
ADDRESS_COLUMNS = ["address_key", "building_key", "unit_type", "unit_number"]
LINK_COLUMNS = ["voter_id", "address_key", "building_key", "parse_status"]
GEOCODE_COLUMNS = ["address_key", "status", *GEOGRAPHY_COLUMNS]

BUCKET_VOTERS = 500_000  # voters per bucket: a roll up to this size is built whole, as before
ROW_GROUP_ROWS = 1024 * 1024  # pyarrow.parquet.write_table's default: the whole build's row groups
READ_ROWS = 1 << 18  # rows per window read from an input
SPILL_ROWS = 1 << 16  # record batch size of the bucket files, read back a slice at a time
PLACE_COLUMNS = ["geocode_status", *GEOGRAPHY_COLUMNS]  # HOUSEHOLDS columns from the geocode
BUILT_COLUMNS = [c for c in schema.HOUSEHOLDS.names if c not in PLACE_COLUMNS]  # from the bucket

Sink = Callable[[pa.Table], None]  # receives one output row group at a time


@dataclass(frozen=True)
class HouseholdInputs:
    voters: pa.Table | Path
    voter_addresses: pa.Table | Path
    addresses: pa.Table | Path
    geocodes: pa.Table | Path


def bucket_count(voters: int, bucket_voters: int | None = None) -> int:
    return max(1, math.ceil(voters / (bucket_voters or BUCKET_VOTERS)))


def row_count(source: pa.Table | Path) -> int:
    return source.num_rows if isinstance(source, pa.Table) else pq.read_metadata(source).num_rows


def column_names(source: pa.Table | Path) -> list[str]:
    return source.column_names if isinstance(source, pa.Table) else pq.read_schema(source).names


def windows(source: pa.Table | Path, columns: list[str], rows: int = READ_ROWS) -> Iterator[pa.Table]:
    """The source's columns in consecutive tables of exactly `rows` rows (the last one shorter)."""
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


class RowGroupWriter:
    """Hands a sink tables of exactly `rows` rows (the last shorter; one empty table when none)."""

    def __init__(self, sink: Sink, rows: int = ROW_GROUP_ROWS):
        self.sink, self.rows, self.held, self.count, self.written = sink, rows, [], 0, 0

    def add(self, table: pa.Table) -> None:
        self.held.append(table)
        self.count += table.num_rows
        while self.count >= self.rows:
            whole = pa.concat_tables(self.held)
            self._emit(whole.slice(0, self.rows))
            rest = whole.slice(self.rows)
            self.held, self.count = [rest], rest.num_rows

    def close(self, empty: pa.Table) -> None:
        if self.count or not self.written:
            self._emit(pa.concat_tables(self.held) if self.held else empty)
        self.held, self.count = [], 0

    def _emit(self, table: pa.Table) -> None:
        self.sink(table.combine_chunks())
        self.written += 1


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


def read_spill(path: Path, columns: list[str] | None = None) -> pa.Table:
    with pa.OSFile(str(path)) as handle:
        table = pa.ipc.open_file(handle).read_all()
    return table if columns is None else table.select(columns)


def split_members(inputs: HouseholdInputs, buckets: int, spill: SpillFiles, voter_households: Sink) -> dict:
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
        rows = pa.array(np.flatnonzero(pc.is_valid(household).to_numpy(zero_copy_only=False)))
        members_seen += len(rows)
        members = pa.Table.from_arrays([*voters.columns, *links.columns[1:]], [*VOTER_COLUMNS, *LINK_COLUMNS[1:]])
        members = members.take(rows)
        numbers = partition_numbers(building.take(rows), buckets)
        for bucket in np.unique(numbers):
            spill.append(int(bucket), members.take(pa.array(np.flatnonzero(numbers == bucket))))
    out.close(schema.VOTER_HOUSEHOLDS.empty_table())
    return {"voters": voters_seen, "voters_in_households": members_seen}


def rows_with_keys(source: pa.Table | Path, columns: list[str], keys: pa.Array) -> pa.Table:
    """The source's rows whose address_key is one of `keys`, in source order, plus one row of
    nulls (its null key matches no household) so a lookup never sees an empty table."""
    names = [c for c in columns if c in column_names(source)]
    fields = source.schema if isinstance(source, pa.Table) else pq.read_schema(source)
    wanted = pa.schema([fields.field(c) for c in names])
    pieces = [w.filter(pc.fill_null(pc.is_in(w["address_key"], value_set=keys), False))
              for w in windows(source, names)]
    nulls = pa.table({f.name: pa.nulls(1, f.type) for f in wanted}, schema=wanted)
    return pa.concat_tables([*pieces, nulls]).combine_chunks()


def as_frame(table: pa.Table):
    """pandas copy of a table the caller no longer uses (its Arrow buffers released meanwhile)."""
    return table.to_pandas(split_blocks=True, self_destruct=True)


def build_bucket(members: Path, inputs: HouseholdInputs, snapshot: date, rule: GroupQuartersRule) -> pa.Table:
    """BUILT_COLUMNS of one bucket's households (sorted by household_id), by build_households
    given the addresses of the bucket's households only; the geography comes in merge_buckets."""
    keys = pc.unique(text(read_spill(members, ["address_key"])["address_key"]))
    addresses = rows_with_keys(inputs.addresses, [c for c in ADDRESS_COLUMNS if c != "building_key"], keys)
    del keys
    voters = as_frame(read_spill(members, VOTER_COLUMNS))
    links = as_frame(read_spill(members, LINK_COLUMNS[1:]))
    links.insert(0, "voter_id", voters["voter_id"].array)
    households, _ = build_households(voters, links, as_frame(addresses), None, snapshot, rule)
    del voters, links
    built = pa.Table.from_pandas(households[BUILT_COLUMNS], preserve_index=False)
    return schema.conform(built, pa.schema([schema.HOUSEHOLDS.field(c) for c in BUILT_COLUMNS]))


def geography(ids: pa.Array, geocodes: pa.Table | None, code_forms: dict | None) -> list[pa.Array]:
    """PLACE_COLUMNS of the households `ids` (with_geography, as build_households attaches them)."""
    frame = with_geography(pd.DataFrame({"household_id": ids.to_pandas()}),
                           None if geocodes is None else as_frame(geocodes), code_forms)
    table = pa.Table.from_pandas(frame[PLACE_COLUMNS], preserve_index=False)
    return [table[c].cast(schema.HOUSEHOLDS.field(c).type).combine_chunks() for c in PLACE_COLUMNS]


def with_places(built: pa.Table, geocodes: pa.Table | Path, code_forms: dict | None) -> pa.Table:
    """HOUSEHOLDS rows: the built columns and each household's geography, a window at a time."""
    ids = text(built["household_id"])
    found = rows_with_keys(geocodes, GEOCODE_COLUMNS, ids) if row_count(geocodes) else None
    places = [[] for _ in PLACE_COLUMNS]
    for start in range(0, max(len(ids), 1), READ_ROWS):
        window = ids.slice(start, READ_ROWS)
        near = None if found is None else rows_with_keys(found, GEOCODE_COLUMNS, window)
        for column, values in zip(places, geography(window, near, code_forms)):
            column.append(values)
    del found
    columns = {c: built[c] for c in BUILT_COLUMNS}
    columns.update({c: pa.chunked_array(v, schema.HOUSEHOLDS.field(c).type) for c, v in zip(PLACE_COLUMNS, places)})
    return pa.Table.from_arrays([columns[c] for c in schema.HOUSEHOLDS.names], schema=schema.HOUSEHOLDS)


class HouseholdTally:
    """The manifest's household counts, added up one row group at a time."""

    def __init__(self):
        self.households = self.members = self.group_quarters = self.multi_unit = self.geocoded = 0
        self.party_mix: dict[str, int] = {}  # first-seen order, as pandas value_counts breaks ties

    def add(self, households: pa.Table) -> None:
        def count(mask) -> int:
            return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)
        self.households += households.num_rows
        self.members += int(pc.sum(households["voter_count"]).as_py() or 0)
        self.group_quarters += count(households["likely_group_quarters"])
        self.multi_unit += count(households["building_multi_unit"])
        self.geocoded += count(pc.equal(households["geocode_status"], "match"))
        for entry in pc.value_counts(households["party_mix"]).to_pylist():
            if entry["values"] is not None:
                self.party_mix[entry["values"]] = self.party_mix.get(entry["values"], 0) + entry["counts"]

    def counts(self, voters: int, voters_in_households: int) -> dict:
        """The counts of tasks.households.household_manifest, in its order."""
        mix = sorted(self.party_mix.items(), key=lambda item: -item[1])  # stable: ties keep first-seen order
        return {
            "households": self.households,
            "voters": voters,
            "voters_in_households": voters_in_households,
            "mean_household_size": round(self.members / self.households, 4) if self.households else 0.0,
            "party_mix": dict(mix),
            "likely_group_quarters": self.group_quarters,
            "multi_unit_households": self.multi_unit,
            "geocoded_households": self.geocoded,
        }


def gather(files: list[pa.ipc.RecordBatchFileReader], bucket: np.ndarray, row: np.ndarray) -> pa.Table:
    """Rows (bucket[i], row[i]) of the bucket files, in that order, reading only the record
    batches that hold them."""
    pieces, position, offset = [], np.empty(len(row), dtype=np.int64), 0
    for number in np.unique(bucket):
        picked = np.flatnonzero(bucket == number)
        lo, hi = int(row[picked].min()), int(row[picked].max()) + 1
        reader = files[number]
        first, last = lo // SPILL_ROWS, (hi - 1) // SPILL_ROWS  # written in batches of SPILL_ROWS
        batches = [reader.get_batch(i) for i in range(first, last + 1)]
        pieces.append(pa.Table.from_batches(batches).slice(lo - first * SPILL_ROWS, hi - lo))
        position[picked] = offset + row[picked] - lo
        offset += hi - lo
    return pa.concat_tables(pieces).take(pa.array(position))


def merge_buckets(paths: list[Path], sink: Sink, tally: HouseholdTally, geocodes: pa.Table | Path,
                  code_forms: dict | None, rows: int = ROW_GROUP_ROWS) -> None:
    """The bucket files' households, sorted by household_id and given their geography, to `sink`
    a row group at a time. Each file is sorted, so a row group takes a run of rows of each file."""
    handles = [pa.OSFile(str(p)) for p in paths]
    try:
        files = [pa.ipc.open_file(h) for h in handles]
        ids = [f.read_all().column("household_id") for f in files]
        starts = np.cumsum([0] + [len(i) for i in ids])
        order = pc.sort_indices(pa.chunked_array([c for i in ids for c in i.chunks], pa.string())).to_numpy()
        del ids
        out, last = RowGroupWriter(sink, rows), None
        for start in range(0, len(order), rows):
            picked = order[start:start + rows]
            bucket = np.searchsorted(starts, picked, "right") - 1
            table = gather(files, bucket, picked - starts[bucket])
            last = refuse_repeats(table["household_id"], last)
            table = with_places(table, geocodes, code_forms)
            tally.add(table)
            out.add(table)
        out.close(schema.HOUSEHOLDS.empty_table())
    finally:
        for handle in handles:
            handle.close()


def refuse_repeats(keys: pa.ChunkedArray, previous: str | None) -> str | None:
    """The last of these sorted keys; refuses a key seen twice (a household in two buckets)."""
    keys = keys.combine_chunks()
    if not len(keys):
        return previous
    repeated = len(keys) > 1 and pc.any(pc.equal(keys.slice(1), keys.slice(0, len(keys) - 1))).as_py()
    if repeated or keys[0].as_py() == previous:
        raise ValueError("a household_id lies in two buckets: its voters have different building_keys")
    return keys[len(keys) - 1].as_py()


def build_households_in_buckets(inputs: HouseholdInputs, snapshot: date, rule: GroupQuartersRule,
                                code_forms: dict | None, spill: Path, households: Sink,
                                voter_households: Sink, buckets: int,
                                progress: Callable[[str], None] = lambda message: None) -> dict:
    """Write HOUSEHOLDS and VOTER_HOUSEHOLDS row groups to the sinks exactly as one
    build_households of the whole roll orders them; return the manifest counts. spill is an empty
    directory for the bucket files. Raises LinksOutOfOrder (see split_members)."""
    members = SpillFiles(spill, "members")
    try:
        voters = split_members(inputs, buckets, members, voter_households)
    finally:
        filled = members.close()
    progress(f"{voters['voters']} voters in {buckets} buckets")
    built = SpillFiles(spill, "households")
    for bucket in filled:
        table = build_bucket(members.path(bucket), inputs, snapshot, rule)
        members.path(bucket).unlink()
        built.append(bucket, table.combine_chunks())  # batches of exactly SPILL_ROWS rows (gather)
        progress(f"bucket {bucket + 1} of {buckets}: {table.num_rows} households")
        del table
    tally = HouseholdTally()
    merge_buckets([built.path(b) for b in built.close()], households, tally, inputs.geocodes, code_forms)
    return tally.counts(voters["voters"], voters["voters_in_households"])
