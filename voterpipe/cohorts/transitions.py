"""Changes between two snapshots' voter cohorts (new registrants, removals, moves, party
switches), counted by cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.cohorts.arrays import as_arrow_strings, count_by, dimension_codes, row_positions, string_column

TRANSITION_CHANGES = ("new_registrant", "removed", "moved", "party_switch")
TRANSITION_DIMENSIONS = ["all", "age_band_default", "generation", "party", "turnout_cohort", "county_code"]


def snapshot_transitions(previous: pd.DataFrame, current: pd.DataFrame, dimensions: list[str]) -> pd.DataFrame:
    """Changes between two voter_cohorts tables, counted by cohort.

    new_registrant: voter_id on the current roll only. removed: on the previous roll only, or now
    with status 'removed' after another status before (cohort from the previous snapshot).
    moved: on both with a household_id (= address_key) on both, and they differ. party_switch:
    on both, party known on both, and different; its 'party_switch' dimension holds 'OLD -> NEW'.
    Other dimensions take the voter's cohort in the current snapshot (previous for 'removed').
    """
    previous = previous.reset_index(drop=True)
    current = current.reset_index(drop=True)
    prev_pos, on_previous = _matches(previous["voter_id"], current["voter_id"])
    both = prev_pos >= 0
    take = pa.array(np.clip(prev_pos, 0, None)) if len(previous) else None

    def pair(column: str) -> tuple[pa.Array, pa.Array]:
        """(current values, previous values of the same voter) as Arrow strings, null = missing."""
        now = string_column(current, column)
        before = string_column(previous, column).take(take) if take is not None \
            else pa.nulls(len(current), pa.large_string())
        return now, before

    def flags(array) -> np.ndarray:  # Arrow booleans, null as False
        return array.fill_null(False).to_numpy(zero_copy_only=False)

    cur_status, prev_status = pair("status")
    became_removed = both & flags(pc.equal(cur_status, "removed")) & ~flags(pc.equal(prev_status, "removed"))
    del cur_status, prev_status
    moved = both & flags(pc.not_equal(*pair("household_id")))
    cur_party, prev_party = pair("party")
    known = flags(pc.not_equal(cur_party, "unknown")) & flags(pc.not_equal(prev_party, "unknown"))
    switched = both & known & flags(pc.not_equal(cur_party, prev_party))
    if switched.any():
        chosen = pa.array(switched)
        cur_party = cur_party.filter(chosen).to_numpy(zero_copy_only=False)
        prev_party = prev_party.filter(chosen).to_numpy(zero_copy_only=False)

    removed_rows = ~on_previous
    if became_removed.any():
        removed_rows[prev_pos[became_removed]] = True
    pieces = _counts_by_cohort(
        (("new_registrant", current, ~both), ("removed", previous, removed_rows),
         ("moved", current, moved), ("party_switch", current, switched)), dimensions)
    if switched.any():
        moves = pd.Series(prev_party.astype(str)) + " -> " + pd.Series(cur_party.astype(str))
        counted = moves.value_counts(sort=False)
        pieces.append(pd.DataFrame({"change": "party_switch", "dimension": "party_switch",
                                    "cohort": counted.index.astype(str), "voters": counted.to_numpy()}))
    return _concat_changes([p for p in pieces if len(p)])


def _matches(previous_ids: pd.Series, current_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(row of each current id among the previous ids, first occurrence, -1 when absent or null;
    whether each previous id is among the current ids), from one Arrow dictionary encoding of
    both rolls' ids rather than two hash lookups."""
    n_previous = len(previous_ids)
    encoded = pa.concat_arrays([as_arrow_strings(previous_ids), as_arrow_strings(current_ids)]).dictionary_encode()
    missing = len(encoded.dictionary)  # the code of a null id
    codes = encoded.indices.fill_null(missing).to_numpy(zero_copy_only=False).astype(np.int64)
    previous_codes, current_codes = codes[:n_previous], codes[n_previous:]
    first_row = np.full(missing + 1, -1, dtype=np.int64)
    first_row[previous_codes[::-1]] = np.arange(n_previous - 1, -1, -1)  # the last write is the first row
    first_row[missing] = -1
    on_current = np.zeros(missing + 1, dtype=bool)
    on_current[current_codes] = True
    on_current[missing] = False
    return first_row[current_codes], on_current[previous_codes]


def _counts_by_cohort(changes, dimensions: list[str]) -> list[pd.DataFrame]:
    """For each (change, frame, mask): voters of the mask by cohort of each dimension the frame has."""
    pieces = []
    for change, frame, mask in changes:
        for dimension in dimensions:
            if dimension != "all" and dimension not in frame:
                continue
            labels, counts = count_by(*dimension_codes(frame, dimension), mask)
            pieces.append(pd.DataFrame({"change": change, "dimension": dimension, "cohort": labels, "voters": counts}))
    return pieces


def _concat_changes(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    if not pieces:
        return pd.DataFrame({"change": pd.Series(dtype=object), "dimension": pd.Series(dtype=object),
                             "cohort": pd.Series(dtype=object), "voters": pd.Series(dtype=np.int64)})
    result = pd.concat(pieces, ignore_index=True)
    result["voters"] = result["voters"].astype(np.int64)
    return result


class TransitionCounts:
    """snapshot_transitions() of a current roll analysed in parts: the previous voter_cohorts (an
    Arrow table, read once) is matched to the current roll's ids up front; each part of the current
    roll then adds its changes, and the previous voters removed are counted at the end."""

    def __init__(self, previous: pa.Table, current_ids: pa.Array, dimensions: list[str], config):
        from voterpipe.cohorts.parts import LabelCounts  # parts imports the turnout room

        previous_ids = previous.column("voter_id").combine_chunks()
        if previous_ids.type != current_ids.type:
            previous_ids = previous_ids.cast(current_ids.type)
        self.previous_row = row_positions(current_ids, previous_ids)
        self.removed_rows = row_positions(previous_ids, current_ids) < 0
        del previous_ids
        # one dictionary per column, so that each part's take() does not concatenate the chunks
        self.previous = previous.drop_columns(["voter_id"]).unify_dictionaries().combine_chunks()
        self.dimensions, self.config = dimensions, config
        self.counts = {(change, d): LabelCounts() for change in ("new_registrant", "moved", "party_switch")
                       for d in dimensions}
        self.moves: dict[str, int] = {}  # 'OLD -> NEW' in order of first sighting

    def _before(self, column: str, take: pa.Array | None, n: int) -> pa.Array:
        """The previous snapshot's values of the part's voters (null when not on it)."""
        if take is None or column not in self.previous.column_names:
            return pa.nulls(n, pa.large_string())
        values = self.previous.column(column).take(take).combine_chunks()
        return values.cast(values.type.value_type if pa.types.is_dictionary(values.type) else values.type) \
            .cast(pa.large_string())

    def add(self, current: pd.DataFrame, start: int) -> None:
        """Count the changes of the current roll's rows start..start+len(current)-1."""
        current = current.reset_index(drop=True)
        n = len(current)
        rows = self.previous_row[start:start + n]
        both = rows >= 0
        take = pa.array(np.clip(rows, 0, None)) if self.previous.num_rows else None

        def flags(array) -> np.ndarray:  # Arrow booleans, null as False
            return array.fill_null(False).to_numpy(zero_copy_only=False)

        cur_status, prev_status = string_column(current, "status"), self._before("status", take, n)
        became_removed = both & flags(pc.equal(cur_status, "removed")) & ~flags(pc.equal(prev_status, "removed"))
        self.removed_rows[rows[became_removed]] = True
        household = string_column(current, "household_id")
        moved = both & flags(pc.not_equal(household, self._before("household_id", take, n)))
        cur_party = string_column(current, "party")
        prev_party = self._before("party", take, n).fill_null("unknown")
        known = flags(pc.not_equal(cur_party, "unknown")) & flags(pc.not_equal(prev_party, "unknown"))
        switched = both & known & flags(pc.not_equal(cur_party, prev_party))
        for change, mask in (("new_registrant", ~both), ("moved", moved), ("party_switch", switched)):
            for dimension in self.dimensions:
                if dimension == "all" or dimension in current:
                    self.counts[(change, dimension)].add(current, dimension, mask)
        if switched.any():
            chosen = pa.array(switched)
            old = pd.Series(prev_party.filter(chosen).to_numpy(zero_copy_only=False).astype(str))
            new = pd.Series(cur_party.filter(chosen).to_numpy(zero_copy_only=False).astype(str))
            for move, voters in (old + " -> " + new).value_counts(sort=False).items():
                self.moves[str(move)] = self.moves.get(str(move), 0) + int(voters)

    def table(self, current_columns: list[str]) -> pd.DataFrame:
        """The transitions table (as snapshot_transitions) of every part added."""
        def piece(change: str, dimension: str, labels, voters) -> pd.DataFrame:
            return pd.DataFrame({"change": change, "dimension": dimension, "cohort": labels, "voters": voters})

        def current_pieces(change: str) -> list[pd.DataFrame]:
            return [piece(change, d, *self.counts[(change, d)].table()) for d in self.dimensions
                    if d == "all" or d in current_columns]

        pieces = current_pieces("new_registrant")
        for dimension in self.dimensions:
            if dimension == "all" or dimension in self.previous.column_names:
                pieces.append(piece("removed", dimension, *self._removed(dimension)))
        pieces += current_pieces("moved") + current_pieces("party_switch")
        if self.moves:
            pieces.append(pd.DataFrame({"change": "party_switch", "dimension": "party_switch",
                                        "cohort": pd.Index(list(self.moves)).astype(str),
                                        "voters": np.array(list(self.moves.values()))}))
        return _concat_changes([p for p in pieces if len(p)])

    def _removed(self, dimension: str) -> tuple[np.ndarray, np.ndarray]:
        """(cohorts, voters) of the previous voters removed, by one dimension: the cohorts of
        cohort_categories() of the previous table, counted a dictionary chunk at a time."""
        from voterpipe.cohorts.rules import label_categories

        removed = self.removed_rows
        if dimension == "all":
            return count_by(np.zeros(int(removed.sum()), dtype=np.int64), np.array(["all"], dtype=object))
        column = self.previous.column(dimension)
        distinct = sorted({v for c in column.chunks for v in _labels(c) if v is not None})
        categories = label_categories(dimension, distinct, self.config)
        if categories is None:  # label_codes(): the labels sorted, missing last
            categories = [*sorted(distinct), self.config.unknown]
            missing = len(categories) - 1
        else:
            missing = categories.index(self.config.unknown)
        rank = {label: i for i, label in enumerate(categories[:missing] if missing == len(categories) - 1
                                                    else categories)}
        counts = np.zeros(len(categories), dtype=np.int64)
        start = 0
        for chunk in column.chunks:
            chunk = chunk.dictionary_encode() if not pa.types.is_dictionary(chunk.type) else chunk
            lookup = np.array([rank.get(v, missing) for v in chunk.dictionary.to_pylist()] + [missing])
            codes = lookup[chunk.indices.fill_null(len(lookup) - 1).to_numpy(zero_copy_only=False)]
            counts += np.bincount(codes[removed[start:start + len(chunk)]], minlength=len(categories))
            start += len(chunk)
        present = np.flatnonzero(counts)
        return np.array(categories, dtype=object)[present], counts[present]


def _labels(chunk: pa.Array) -> list:
    """The labels of a chunk (a dictionary's may include some no row has: they count 0)."""
    return (chunk.dictionary if pa.types.is_dictionary(chunk.type) else pc.unique(chunk)).to_pylist()
