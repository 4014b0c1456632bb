"""Counts of a roll analysed in parts (voter_id ranges): each part adds its voters to running
counts keyed by label, and the finished tables equal those of the whole roll analysed at once."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from voterpipe.cohorts.arrays import as_arrow_strings, day_number, dimension_codes, first_names
from voterpipe.cohorts.config import CohortConfig
from voterpipe.cohorts.geography import DISTRICT_COLUMNS
from voterpipe.cohorts.roll import Roll
from voterpipe.cohorts.summaries import party_mix_rows
from voterpipe.cohorts.turnout import (
    _as_of_dimensions, _empty_turnout, _fixed_dimensions, _turnout_table, append_cells, place_counts,
    precinct_geography,
)
from voterpipe.cohorts.votes import VoteIndex


class Labels:
    """Labels seen so far, each with a number in order of first sighting (None = missing)."""

    def __init__(self):
        self.ids: dict = {}

    def numbers(self, values) -> np.ndarray:
        """The number of each value (new labels are added), via the distinct values only."""
        encoded = as_arrow_strings(pd.Series(values).reset_index(drop=True)).dictionary_encode()
        distinct = [self.ids.setdefault(v, len(self.ids)) for v in encoded.dictionary.to_pylist()]
        lookup = np.array([*distinct, self.ids.setdefault(None, len(self.ids))], dtype=np.int64)
        indices = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False)
        return lookup[indices]

    def sorted_codes(self, unknown: str) -> tuple[np.ndarray, np.ndarray]:
        """(code of each label number, labels): label_codes()'s order, sorted with missing last."""
        named = [(v, i) for v, i in self.ids.items() if v is not None]
        labels = np.array([v for v, _ in named], dtype=object)
        order = np.argsort(labels.astype(str), kind="stable")
        codes = np.full(len(self.ids), len(named), dtype=np.int64)
        codes[np.array([i for _, i in named], dtype=np.int64)[order]] = np.arange(len(named))
        return codes, np.array([*labels[order], unknown], dtype=object)


class LabelCounts:
    """Voters per cohort of one dimension as count_by() over dimension_codes() of the whole roll
    gives them: a categorical's categories in order, else labels sorted with missing last."""

    def __init__(self, unknown: str = "unknown"):
        self.unknown = unknown
        self.categories: list[str] | None = None
        self.labels = Labels()
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, frame: pd.DataFrame, dimension: str, mask: np.ndarray) -> None:
        if dimension == "all" or isinstance(frame[dimension].dtype, pd.CategoricalDtype):
            codes, labels = dimension_codes(frame, dimension, self.unknown)
            self.categories = list(labels)
            numbers = self.labels.numbers(labels)[codes[mask]]
        else:
            numbers = self.labels.numbers(frame[dimension].reset_index(drop=True)[mask])
        found = np.bincount(numbers, minlength=len(self.labels.ids))
        self.counts = np.append(self.counts, np.zeros(len(found) - len(self.counts), dtype=np.int64)) + found

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, voters) of the cohorts with at least one voter."""
        counts = np.append(self.counts, np.zeros(len(self.labels.ids) - len(self.counts), dtype=np.int64))
        if self.categories is not None:
            labels = np.array(self.categories, dtype=object)
            voters = np.array([counts[self.labels.ids[c]] if c in self.labels.ids else 0
                               for c in self.categories], dtype=np.int64)
        else:
            codes, labels = self.labels.sorted_codes(self.unknown)
            voters = np.zeros(len(labels), dtype=np.int64)
            np.add.at(voters, codes, counts)
        present = np.flatnonzero(voters)
        return labels[present], voters[present]


LEVEL_NAMES = ("county", *DISTRICT_COLUMNS, "precinct", "tract")


class TurnoutCounts:
    """cohort_turnout() of a roll added up part by part: each part counts registered and voted per
    place (distinct combination of geographies in the part) and cohort, per election, and adds
    them up to each level's geographies at once, so what is kept grows with the geographies (a
    few thousand), not with their combinations."""

    def __init__(self, votes: VoteIndex, state: str, config: CohortConfig):
        self.state, self.config = state, config
        self.elections = votes.elections.sort_values(["election_date", "election_type"]).reset_index(drop=True)
        self.dimensions = config.dimensions()
        self.levels = {name: Labels() for name in LEVEL_NAMES}
        self.county_names: dict[int, object] = {}  # county label number -> name of its first voter
        self.any_county_name = False
        self.labels_of: dict[str, np.ndarray] = {}  # each dimension's labels (the same in every part)
        # per level ('state' first): (geography label number, election, registered then voted of
        # each dimension's cohorts) counts
        self.counts: list[np.ndarray] = []

    def add(self, cohorts: pd.DataFrame, votes: VoteIndex, roll: Roll) -> None:
        """Count one part: `cohorts` as assign_cohorts() plus geography, with 'precinct'."""
        n = len(cohorts)
        numbers = self._level_numbers(cohorts)
        place, place_numbers = _places_of(numbers, n)
        del numbers
        places = len(place_numbers[0])
        groups = [_groups(geo) for geo in (np.zeros(places, dtype=np.int64), *place_numbers)]
        fixed = _fixed_dimensions(cohorts)
        for position, row in enumerate(self.elections.itertuples(index=False)):
            day = row.election_date.date()
            cast = votes.voted(row.election_id, n)
            registered = cast | np.isnan(roll.registered_days) | (roll.registered_days <= day_number(day))
            state_ = registered.astype(np.int64) + cast
            dims = {**fixed, **_as_of_dimensions(roll, day, self.config)}
            by_place = place_counts(place, places, state_, dims, self.dimensions)
            for dimension in self.dimensions:
                self.labels_of[dimension] = dims[dimension][1]
            counted = np.hstack([by_place[d][k].reshape(places, len(dims[d][1]))
                                 for k in (0, 1) for d in self.dimensions])
            self._add_to_levels(position, groups, counted)

    def _add_to_levels(self, position: int, groups: list[tuple], counted: np.ndarray) -> None:
        """Add one election's counts per place to each level's geographies (`groups`: _groups())."""
        if not self.counts:
            self.counts = [np.zeros((0, len(self.elections), counted.shape[1]), dtype=np.int32)
                           for _ in range(len(LEVEL_NAMES) + 1)]
        for index, (order, starts, numbers) in enumerate(groups):
            size = 1 if index == 0 else len(self.levels[LEVEL_NAMES[index - 1]].ids)
            held = self.counts[index]
            if len(held) < size:
                grown = np.zeros((max(size, len(held) * 5 // 4),) + held.shape[1:], dtype=held.dtype)
                grown[:len(held)] = held
                self.counts[index] = held = grown
            held[numbers, position] += np.add.reduceat(counted[order], starts, axis=0)

    def _level_numbers(self, cohorts: pd.DataFrame) -> list[np.ndarray]:
        county = self.levels["county"].numbers(cohorts["county_code"])
        if "county_name" in cohorts:
            names = cohorts["county_name"].to_numpy(dtype=object)
            self.any_county_name |= bool(pd.notna(names).any())
            for number, name in zip(*first_names(county, names)):
                self.county_names.setdefault(int(number), name)
        numbers = [county]
        for level in DISTRICT_COLUMNS:
            numbers.append(self.levels[level].numbers(cohorts[level]))
        numbers.append(self.levels["precinct"].numbers(precinct_geography(cohorts)))
        numbers.append(self.levels["tract"].numbers(cohorts["tract"]))
        return numbers

    def tables(self) -> Iterator[pd.DataFrame]:
        """The cohort_turnout table of every part added, one election at a time (in the table's
        order: a state's table has millions of rows)."""
        if not self.labels_of or not len(self.elections):  # no voter or no election
            yield _empty_turnout()
            return
        levels, sorted_rows = self._levels()
        dims = {d: (None, labels) for d, labels in self.labels_of.items()}
        widths = [len(self.labels_of[d]) for d in self.dimensions]
        offsets = np.cumsum([0, *widths, *widths])
        for position in range(len(self.elections)):
            columns: dict[str, list[np.ndarray]] = {name: [] for name in (
                "election", "level", "geography", "geography_name", "dimension", "cohort", "registered", "voted")}
            for index, level in enumerate(levels):
                counted = np.zeros((len(level[2]), offsets[-1]), dtype=np.int64)
                counted[sorted_rows[index]] = self.counts[index][:len(sorted_rows[index]), position]
                by_geography = {d: tuple(counted[:, offsets[k * len(widths) + i]:offsets[k * len(widths) + i + 1]]
                                         .reshape(-1) for k in (0, 1)) for i, d in enumerate(self.dimensions)}
                append_cells(columns, position, [np.arange(len(level[2]))], by_geography, dims, self.dimensions,
                             [level], first_level=index)
            yield _turnout_table(columns, self.elections, [level[0] for level in levels], self.dimensions)

    def _levels(self) -> tuple[list, list[np.ndarray]]:
        """Each level as turnout's Level (labels sorted, missing last) and the sorted row of each
        of its label numbers."""
        unknown = self.config.unknown
        levels = [("state", None, np.array([self.state.upper()], dtype=object), None)]
        rows = [np.zeros(1, dtype=np.int64)]
        for name in LEVEL_NAMES:
            codes, labels = self.levels[name].sorted_codes(unknown)
            names = None
            if name == "county" and self.any_county_name:
                names = np.full(len(labels), None, dtype=object)
                for number, value in self.county_names.items():
                    names[codes[number]] = value
            levels.append((name, None, labels, names))
            rows.append(codes)
        return levels, rows


def _groups(geo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(places in order of their label number, first of each number in that order, the numbers)."""
    order = np.argsort(geo, kind="stable")
    ordered = geo[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return order, starts, ordered[starts]


def _places_of(numbers: list[np.ndarray], n: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The place (distinct combination of the levels' label numbers) of each voter of a part, and
    each level's label number of each place."""
    key = np.zeros(n, dtype=np.int64)
    for codes in numbers:
        width = int(codes.max(initial=0)) + 1
        if np.int64(key.max(initial=0)) >= 2 ** 62 // width:  # keep the key in int64
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
        key = key * width + codes
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), [codes[first] for codes in numbers]


class MixCounts:
    """party_mix_by_cohort() added up part by part."""

    def __init__(self, dimensions: list[str], unknown: str = "unknown"):
        self.dimensions = dimensions
        self.mixes = Labels()
        self.cohort_labels: dict[str, np.ndarray] = {}
        self.counts: dict[str, np.ndarray] = {}
        self.unknown = unknown

    def add(self, cohorts: pd.DataFrame) -> None:
        mix = self.mixes.numbers(cohorts["household_party_mix"])
        width = len(self.mixes.ids)
        for dimension in self.dimensions:
            codes, labels = dimension_codes(cohorts, dimension)
            self.cohort_labels[dimension] = labels
            found = np.bincount(codes * width + mix, minlength=len(labels) * width).reshape(len(labels), width)
            held = self.counts.get(dimension, np.zeros((len(labels), 0), dtype=np.int64))
            grown = np.zeros((len(labels), width), dtype=np.int64)
            grown[:, :held.shape[1]] = held
            self.counts[dimension] = grown + found

    def table(self) -> pd.DataFrame:
        if not self.counts:  # no voter added
            return pd.DataFrame({c: pd.Series(dtype=object) for c in ("dimension", "cohort", "party_mix")}
                                | {"voters": pd.Series(dtype=np.int64), "share": pd.Series(dtype=float)})
        codes, mix_labels = self.mixes.sorted_codes(self.unknown)
        pieces = []
        for dimension in self.dimensions:
            held = self.counts[dimension]
            counts = np.zeros((held.shape[0], len(mix_labels)), dtype=np.int64)
            counts[:, codes[:held.shape[1]]] += held
            pieces.append(party_mix_rows(dimension, self.cohort_labels[dimension], mix_labels, counts))
        return pd.concat(pieces, ignore_index=True)


class CoverageCounts:
    """geocode_coverage_by_county() added up part by part."""

    def __init__(self):
        self.counties = Labels()
        self.names: dict[int, object] = {}
        self.counts = np.zeros((0, 3), dtype=np.int64)  # voters, with an address, geocoded

    def add(self, cohorts: pd.DataFrame) -> None:
        county = self.counties.numbers(cohorts["county_code"])
        size = len(self.counties.ids)
        if "county_name" in cohorts:
            for number, name in zip(*first_names(county, cohorts["county_name"].to_numpy(dtype=object))):
                self.names.setdefault(int(number), name)
        found = np.stack([np.bincount(county, minlength=size),
                          np.bincount(county, weights=cohorts["household_id"].notna().to_numpy(), minlength=size),
                          np.bincount(county, weights=cohorts["geocoded"].to_numpy(dtype=bool), minlength=size)],
                         axis=1).astype(np.int64)
        found[:len(self.counts)] += self.counts
        self.counts = found

    def table(self) -> pd.DataFrame:
        codes, labels = self.counties.sorted_codes("unknown")
        counts = np.zeros((len(labels), 3), dtype=np.int64)
        counts[codes[:len(self.counts)]] += self.counts
        names = np.full(len(labels), None, dtype=object)
        for number, value in self.names.items():
            names[codes[number]] = value
        present = np.flatnonzero(counts[:, 0])
        frame = pd.DataFrame({
            "county_code": labels[present], "county_name": names[present],
            "voters": counts[present, 0], "voters_with_address": counts[present, 1],
            "voters_geocoded": counts[present, 2],
        })
        frame["geocode_rate"] = frame["voters_geocoded"] / frame["voters"]
        return frame
