"""Merge per-bucket HOUSEHOLDS files (each sorted by household_id) into one sorted output, a
row group at a time, and count what the manifest reports."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import schema

ROW_GROUP_ROWS = 1024 * 1024  # pyarrow.parquet.write_table's default: the whole build's row groups
SPILL_ROWS = 1 << 16  # row group size of the bucket files, read back a run at a time

Sink = Callable[[pa.Table], None]  # receives one output row group per call


class RowGroupWriter:
    """Hands a sink tables of exactly `rows` rows (the last shorter; one empty table when none)."""

    def __init__(self, sink: Sink, rows: int | None = None):
        self.sink, self.rows, self.held, self.count, self.written = sink, rows or ROW_GROUP_ROWS, [], 0, 0

    def add(self, table: pa.Table) -> None:
        self.held.append(table)
        self.count += table.num_rows
        while self.count >= self.rows:
            whole = pa.concat_tables(self.held)
            self._emit(whole.slice(0, self.rows))
            rest = whole.slice(self.rows)  # (an empty rest would still hold the emitted buffers)
            self.held, self.count = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self, empty: pa.Table) -> None:
        if self.count or not self.written:
            self._emit(pa.concat_tables(self.held) if self.held else empty)
        self.held, self.count = [], 0

    def _emit(self, table: pa.Table) -> None:
        self.sink(table)  # one row group per call however the columns are chunked
        self.written += 1


def write_bucket(households: pa.Table, path: Path) -> None:
    """A bucket's HOUSEHOLDS, in the row groups gather() expects."""
    pq.write_table(households, path, row_group_size=SPILL_ROWS, compression="none", use_dictionary=False,
                   write_statistics=False)  # read once, soon: no need to encode it well


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


def gather(files: list[pq.ParquetFile], bucket: np.ndarray, row: np.ndarray) -> pa.Table:
    """Rows (bucket[i], row[i]) of the bucket files, in that order, read a column at a time from
    only the row groups that hold them."""
    runs, position, offset = [], np.empty(len(row), dtype=np.int64), 0
    for number in np.unique(bucket):
        picked = np.flatnonzero(bucket == number)
        lo, hi = int(row[picked].min()), int(row[picked].max()) + 1
        first, last = lo // SPILL_ROWS, (hi - 1) // SPILL_ROWS
        runs.append((files[number], list(range(first, last + 1)), lo - first * SPILL_ROWS, hi - lo))
        position[picked] = offset + row[picked] - lo
        offset += hi - lo
    take, columns = pa.array(position), []
    for field in schema.HOUSEHOLDS:  # a column at a time: the gathered rows are held about once
        pieces = [file.read_row_groups(groups, columns=[field.name], use_threads=False)[field.name].slice(skip, count)
                  for file, groups, skip, count in runs]
        columns.append(pa.chunked_array([c for p in pieces for c in p.chunks], field.type).take(take))
    return pa.Table.from_arrays(columns, schema=schema.HOUSEHOLDS)


def refuse_repeats(keys: pa.ChunkedArray, previous: str | None) -> str | None:
    """The last of these sorted keys; refuses a key seen twice (a household in two buckets)."""
    keys = keys.combine_chunks()
    if not len(keys):
        return previous
    repeated = len(keys) > 1 and pc.any(pc.equal(keys.slice(1), keys.slice(0, len(keys) - 1))).as_py()
    if repeated or keys[0].as_py() == previous:
        raise ValueError("a household_id lies in two buckets: its voters have different building_keys")
    return keys[len(keys) - 1].as_py()


def merge_buckets(paths: list[Path], sink: Sink, tally: HouseholdTally, rows: int | None = None) -> None:
    """The bucket files' households sorted by household_id (byte order, as pandas sorts them) to
    `sink` a row group at a time. Each file is sorted, so a row group takes a run of each file."""
    files = [pq.ParquetFile(p) for p in paths]
    ids = [f.read(columns=["household_id"])["household_id"] for f in files]
    starts = np.cumsum([0] + [len(i) for i in ids])
    order = pc.sort_indices(pa.chunked_array([c for i in ids for c in i.chunks], pa.string())).to_numpy()
    del ids
    rows = rows or ROW_GROUP_ROWS
    out, last = RowGroupWriter(sink, rows), None
    for start in range(0, len(order), rows):
        picked = order[start:start + rows]
        bucket = np.searchsorted(starts, picked, "right") - 1
        table = gather(files, bucket, picked - starts[bucket])
        last = refuse_repeats(table["household_id"], last)
        tally.add(table)
        out.add(table)
        del table
    out.close(schema.HOUSEHOLDS.empty_table())
