"""The cohort stage's analysis in bounded memory: the roll is read from its Parquet files in parts
of `voters_per_part` rows; each part's voter_cohorts rows are handed to a writer and its counts
added up (parts.py), so memory grows with the part, not the roll. Same tables as analyse_cohorts()."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import os
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe.ages import AGE_METHODS
from voterpipe.cohorts.analysis import CohortTables, history_summary
from voterpipe.cohorts.arrays import row_positions
from voterpipe.cohorts.config import TURNOUT_CODES, CohortConfig
from voterpipe.cohorts.geography import voter_households_and_geography
from voterpipe.cohorts.parts import CoverageCounts, MixCounts, TurnoutCounts
from voterpipe.cohorts.roll import Roll
from voterpipe.cohorts.rules import assign_cohorts, party_categories
from voterpipe.cohorts.summaries import household_size_distribution
from voterpipe.cohorts.transitions import TRANSITION_DIMENSIONS, TransitionCounts
from voterpipe.cohorts.votes import (
    MISSING_DAY, HistoryRows, VoteIndex, pack_votes, votes_of_rows, votes_of_voters,
)
from voterpipe.memory import release_memory

HOUSEHOLD_COLUMNS = ["household_id", "voter_count", "party_mix"]
VOTERS_PER_PART = 250_000  # the memory of a part's frames is what bounds the stage's peak


@dataclass
class CohortFiles:
    """The stage's inputs as Parquet files, and the columns read of each."""

    voters: Path
    history: Path
    voter_households: Path
    households: Path
    geocodes: Path
    voter_columns: list[str]
    geocode_columns: list[str]  # address_key, then labels (read as dictionaries)


class _NotAligned(Exception):
    """voter_households changed while it was read: its rows are no longer the voters' rows."""


def analyse_cohorts_in_parts(
    files: CohortFiles, write: Callable[[pd.DataFrame], None], *, state: str, snapshot: date,
    config: CohortConfig, code_forms: dict, previous: pa.Table | None = None,
    voters_per_part: int | None = None,
) -> CohortTables:
    """analyse_cohorts() over the files, part by part: `write` gets each part's voter_cohorts rows
    in roll order (the returned tables have voter_cohorts None); `previous` is the earlier
    snapshot's voter_cohorts (the columns transitions compare) as an Arrow table, or None."""
    return _analyse(files, write, state=state, snapshot=snapshot, config=config, code_forms=code_forms,
                    previous=previous, voters_per_part=voters_per_part or VOTERS_PER_PART)


def _analyse(files: CohortFiles, write, *, state: str, snapshot: date, config: CohortConfig,
             code_forms: dict, previous: pa.Table | None, voters_per_part: int) -> CohortTables:
    voter_ids = pq.read_table(files.voters, columns=["voter_id"]).column("voter_id").combine_chunks()
    n = len(voter_ids)
    aligned = _same_rows(voter_ids, files.voter_households)
    votes = pack_votes(votes_of_rows(history_rows(files.history, voter_ids), n, snapshot, config))
    parties = party_categories(_distinct(files.voters, "party"), config)
    transitions = None if previous is None else TransitionCounts(previous, voter_ids, TRANSITION_DIMENSIONS, config)
    del voter_ids
    release_memory()  # the history's buffers, before the lookups are read
    lookup_rows = None
    if aligned:  # each voter's household and geocode row, looked up once for the roll (not per part)
        lookup_rows = _lookup_rows(files.voter_households, [(files.households, HOUSEHOLD_COLUMNS[0]),
                                                            (files.geocodes, files.geocode_columns[0])])
    keys = 1 if aligned else 0  # the keys are needed only to look rows up part by part
    households = _narrow_dictionaries(pq.read_table(files.households, columns=HOUSEHOLD_COLUMNS[keys:],
                                                    read_dictionary=["party_mix"]))
    geocodes = _narrow_dictionaries(pq.read_table(files.geocodes, columns=files.geocode_columns[keys:],
                                                  read_dictionary=files.geocode_columns[1:]))
    links = None if aligned else pq.read_table(files.voter_households, columns=["voter_id", "household_id"]) \
        .to_pandas(date_as_object=False)
    turnout = TurnoutCounts(votes, state, config)
    mix = MixCounts([d for d in config.dimensions() if d != "tenure_band"])
    coverage, summary = CoverageCounts(), _Summary()
    start = 0
    for voters, part_links in _parts(files, voters_per_part, aligned):
        stop = start + len(voters)
        part_votes = votes_of_voters(votes, start, stop)
        rows = None if lookup_rows is None else tuple(_nullable(r) for r in lookup_rows.rows(start, stop))
        roll = Roll(voters, config)
        cohorts = _part_cohorts(voters, part_votes, roll, part_links if aligned else links,
                                (households, geocodes, rows), snapshot, config, parties, code_forms, state)
        turnout.add(cohorts, part_votes, roll)
        del voters
        mix.add(cohorts)
        coverage.add(cohorts)
        summary.add(cohorts)
        if transitions is not None:
            transitions.add(cohorts, start)
        write(cohorts)
        start = stop
        release_memory()
    if lookup_rows is not None:
        lookup_rows.close()
    columns = list(cohorts.columns) if n else []
    return CohortTables(
        voter_cohorts=None, cohort_turnout=None, turnout_parts=turnout.tables, elections=votes.elections.copy(),
        household_sizes=household_size_distribution(
            households.select(["voter_count"]).to_pandas(), config.household_top_size),
        household_party_mix=mix.table(), geocode_coverage=coverage.table(),
        transitions=None if transitions is None else transitions.table(columns),
        summary=summary.counts(votes, n))


def _part_cohorts(voters: pd.DataFrame, votes: VoteIndex, roll: Roll, links: pd.DataFrame, lookups: tuple,
                  snapshot: date, config: CohortConfig, parties: list[str], code_forms: dict,
                  state: str) -> pd.DataFrame:
    """analyse_cohorts()'s voter_cohorts rows (with 'precinct') of one part of the roll."""
    cohorts = assign_cohorts(voters, votes, snapshot, config, roll, party_categories=parties)
    households, geocodes, rows = lookups
    place = voter_households_and_geography(voters, links, households, geocodes, code_forms, rows)
    for column in place.columns:
        cohorts[column] = place[column].array
    if "precinct" in voters:
        cohorts["precinct"] = voters["precinct"].reset_index(drop=True).array
    cohorts.insert(0, "snapshot", pd.Timestamp(snapshot))
    cohorts.insert(0, "state", state.lower())
    return cohorts


def _parts(files: CohortFiles, rows: int, aligned: bool) -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None]]:
    voters = _slices(files.voters, files.voter_columns, rows)
    links = _slices(files.voter_households, ["voter_id", "household_id"], rows) if aligned else None
    for part in voters:
        linked = next(links, None) if links is not None else None
        if aligned and (linked is None or linked.num_rows != part.num_rows):
            raise _NotAligned
        yield (part.to_pandas(date_as_object=False),
               None if linked is None else linked.to_pandas(date_as_object=False))
    if links is not None and next(links, None) is not None:
        raise _NotAligned


def _slices(path: Path, columns: list[str], rows: int) -> Iterator[pa.Table]:
    """The file's rows in tables of exactly `rows` rows (the last one shorter)."""
    held, count = [], 0
    for batch in _batches(pq.ParquetFile(path), rows, columns, threads=True):
        held.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(held)
            yield table.slice(0, rows).combine_chunks()
            rest = table.slice(rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held).combine_chunks()


def _batches(source: pq.ParquetFile, rows: int, columns: list[str], threads: bool = False) -> Iterator[pa.RecordBatch]:
    """The file's batches, read by one reader per row group: a reader of the whole file keeps
    what it has read of every row group until it is done (~20 MB a million rows of ids)."""
    for group in range(source.num_row_groups):
        yield from source.iter_batches(batch_size=rows, row_groups=[group], columns=columns,
                                       use_threads=threads)


class SpilledRows:
    """Arrays of int32 of the roll's length in an anonymous temporary file (deleted when closed or
    when the process ends), read back a part at a time: not held in memory for the whole roll."""

    def __init__(self, length: int):
        self.length, self.arrays = length, 0
        self.file = tempfile.TemporaryFile(prefix="voterpipe-cohorts-")

    def append(self, values: np.ndarray) -> None:
        self.file.seek(self.arrays * self.length * 4)
        np.ascontiguousarray(values, dtype=np.int32).tofile(self.file)
        self.file.flush()
        self.arrays += 1

    def rows(self, start: int, stop: int) -> list[np.ndarray]:
        """Each array's values start..stop-1."""
        return [np.frombuffer(os.pread(self.file.fileno(), (stop - start) * 4, (k * self.length + start) * 4),
                              dtype=np.int32) for k in range(self.arrays)]

    def close(self) -> None:
        self.file.close()


def _lookup_rows(voter_households: Path, keys: list[tuple[Path, str]]) -> SpilledRows:
    """Per row of voter_households: the row of its household_id among each file's key column
    (households' ids, geocodes' address keys; -1: none), from the file's household ids read a
    batch at a time as dictionaries and matched in one lookup per key column (read one at a time);
    spilled to a temporary file (read back a part at a time)."""
    source = pq.ParquetFile(voter_households)
    indices, dictionaries = _dictionary_indices(source, "household_id")
    distinct = pa.concat_arrays(dictionaries) if dictionaries else pa.array([], pa.string())
    del dictionaries
    found = SpilledRows(len(indices))
    for path, column in keys:
        values = _column(path, column)
        rows = np.append(row_positions(distinct.cast(values.type), values), np.int32(-1))
        del values
        found.append(rows[indices])
    return found


def _dictionary_indices(source: pq.ParquetFile, column: str) -> tuple[np.ndarray, list[pa.Array]]:
    """A column's rows as indices into the concatenation of its batches' dictionaries (-1: null)."""
    indices = np.empty(source.metadata.num_rows, dtype=np.int32)
    dictionaries, at, offset = [], 0, 0
    for batch in _batches(source, 1 << 16, [column]):
        ids = batch.column(0).dictionary_encode()
        indices[at:at + batch.num_rows] = ids.indices.fill_null(-1 - offset).to_numpy(zero_copy_only=False) \
            + np.int32(offset)
        dictionaries.append(ids.dictionary)
        offset += len(ids.dictionary)
        at += batch.num_rows
    return indices, dictionaries


def _narrow_dictionaries(table: pa.Table) -> pa.Table:
    """The table's dictionary columns as one dictionary each, indexed by the narrowest integers
    their labels allow (int8 or int16 instead of int32: a byte or two a row), a column at a time."""
    for position, name in enumerate(table.column_names):
        column = table.column(name)
        if not pa.types.is_dictionary(column.type) or len(column) == 0:
            continue
        column = pa.table({name: column}).unify_dictionaries().column(name)
        dictionary = column.chunk(0).dictionary
        kind = pa.int8() if len(dictionary) < 1 << 7 else pa.int16() if len(dictionary) < 1 << 15 else None
        if kind is not None:
            column = pa.chunked_array([pa.DictionaryArray.from_arrays(chunk.indices.cast(kind), dictionary)
                                       for chunk in column.chunks])
        table = table.set_column(position, name, column.combine_chunks())
    return table


def _column(path: Path, name: str) -> pa.Array:
    return pq.read_table(path, columns=[name]).column(name).combine_chunks()


def _nullable(rows: np.ndarray) -> pa.Array:
    return pa.array(rows, type=pa.int32(), mask=rows < 0)


def _same_rows(voter_ids: pa.Array, voter_households: Path) -> bool:
    """Whether voter_households has the voters' ids in the same rows (the test of
    geography._household_of_each_voter over the whole roll): then each part is looked up alone."""
    linked = pq.read_table(voter_households, columns=["voter_id"]).column("voter_id").combine_chunks()
    return len(linked) == len(voter_ids) and \
        pc.all(pc.fill_null(pc.equal(linked, voter_ids), False)).as_py() is not False


def _distinct(path: Path, column: str) -> pd.Series:
    """The distinct values of a (low-cardinality) column, read as a dictionary."""
    values = pq.read_table(path, columns=[column], read_dictionary=[column]).column(column)
    distinct = pc.unique(values.cast(values.type.value_type) if pa.types.is_dictionary(values.type) else values)
    return pd.Series(distinct.to_pylist(), dtype=object)


def history_rows(path: Path, voter_ids: pa.Array) -> HistoryRows:
    """The history file as HistoryRows matched to the roll's ids, read a batch at a time into
    arrays of the file's length: each batch's voter ids are encoded as a dictionary, and the
    dictionaries matched to the roll in one lookup, so no column of strings the size of the
    history is held."""
    source = pq.ParquetFile(path)
    total = source.metadata.num_rows
    indices, days = np.empty(total, dtype=np.int32), np.empty(total, dtype=np.int32)
    types, counted = np.empty(total, dtype=np.int16), np.empty(total, dtype=bool)
    dictionaries, type_ids, at, offset = [], {}, 0, 0
    for batch in _batches(source, 1 << 16, ["voter_id", "election_date", "election_type", "ballot_status"]):
        rows = slice(at, at + batch.num_rows)
        ids = batch.column("voter_id").dictionary_encode()
        indices[rows] = ids.indices.fill_null(-1 - offset).to_numpy(zero_copy_only=False) + np.int32(offset)
        dictionaries.append(ids.dictionary)
        offset += len(ids.dictionary)
        day = batch.column("election_date").cast(pa.int32()).fill_null(MISSING_DAY)
        days[rows] = day.to_numpy(zero_copy_only=False)
        kinds = batch.column("election_type").dictionary_encode()
        lookup = np.array([type_ids.setdefault(v, len(type_ids)) for v in kinds.dictionary.to_pylist()] + [-1])
        types[rows] = lookup[kinds.indices.fill_null(len(lookup) - 1).to_numpy(zero_copy_only=False)]
        counted[rows] = pc.fill_null(pc.not_equal(batch.column("ballot_status"), "not_counted"), True) \
            .to_numpy(zero_copy_only=False)
        at += batch.num_rows
    names = [str(t) for t in type_ids]
    if "other" not in names:
        names.append("other")
    _to_positions(indices, dictionaries, voter_ids)
    type_codes = np.where(types < 0, np.int16(names.index("other")), types)  # int16: 2 bytes a row
    return HistoryRows(indices, days, type_codes, names, counted)


def _to_positions(indices: np.ndarray, dictionaries: list[pa.Array], voter_ids: pa.Array) -> None:
    """Replace each history row's dictionary index by the roll row of its voter id (first
    occurrence; -1 when absent or null), in place."""
    if not len(indices):
        return
    distinct = pa.concat_arrays(dictionaries)
    dictionaries.clear()
    if distinct.type != voter_ids.type:
        distinct = distinct.cast(voter_ids.type)
    rows = np.append(row_positions(distinct, voter_ids), np.int32(-1))
    del distinct
    for start in range(0, len(indices), 1 << 20):  # a null id was given the index -1: the appended -1
        indices[start:start + (1 << 20)] = rows[indices[start:start + (1 << 20)]]


class _Summary:
    """analysis._summary() added up part by part."""

    def __init__(self):
        self.age_methods = dict.fromkeys(AGE_METHODS, 0)
        self.turnout = dict.fromkeys(TURNOUT_CODES, 0)
        self.sources: dict[str, int] = {}
        self.geocoded = self.with_household = 0

    def add(self, cohorts: pd.DataFrame) -> None:
        for key, value in cohorts["age_method"].value_counts(sort=False).items():
            self.age_methods[key] += int(value)
        for key, value in cohorts["turnout_cohort"].value_counts(sort=False).items():
            self.turnout[key] += int(value)
        for key, value in pd.Series(cohorts["district_source"]).value_counts().items():
            self.sources[key] = self.sources.get(key, 0) + int(value)
        self.geocoded += int(cohorts["geocoded"].sum())
        self.with_household += int(cohorts["household_id"].notna().sum())

    def counts(self, votes: VoteIndex, n: int) -> dict:
        return {
            **history_summary(n, votes),
            "age_methods": {k: v for k, v in self.age_methods.items() if v},
            "turnout_cohorts": dict(self.turnout),
            "district_sources": dict(sorted(self.sources.items(), key=lambda item: -item[1])),
            "voters_geocoded": self.geocoded,
            "voters_with_household": self.with_household,
            "denominator": "current roll, registered on or before election day (removed voters absent)",
        }
