"""The candidate search of the TIGER engine, for the rows the exact fast path did not settle.

Rules (tiger_streets.RULES) are tried strongest first, each in every scope before the next:
the delivered ZIP, then the county (or counties) of that ZIP; a ZIP missing or unknown to the
imported data goes to the input's state instead (every imported county when there is no state).
Misspellings come last and are ranked county-wide, only for names the scope does not hold. In
each stage tiger_streets.StreetCatalogue names the candidate streets and the house number picks
the range. Once a rule finds the street, weaker rules are never tried for that row: a number
outside every range of it is a no_match with reason number_out_of_range, not another street.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from voterpipe.geocode.tiger_import import PARITY_EVEN, PARITY_ODD
from voterpipe.geocode.tiger_streets import METHODS, REASONS, RULES, ZIP_FALLBACK_FACTOR, Resolution

MEMO_LIMIT = 1_000_000  # resolved street queries kept per engine (a server runs for long)
_METHOD = {m: n for n, m in enumerate(METHODS)}
_REASON = {r: n for n, r in enumerate(REASONS)}


@dataclass
class Queries:
    """The input rows, coded: numbers, distinct streets (with their keys), ZIPs and states."""

    number: np.ndarray
    has_number: np.ndarray
    street_codes: np.ndarray
    street: np.ndarray  # per distinct street: key_full, key_nodir, key_base (objects)
    zip_codes: np.ndarray
    zip_uniques: list[str]
    state_codes: np.ndarray
    state_uniques: list[str]


@dataclass
class Outcome:
    """Per row: range row, status (0 none, 1 match, 2 tie), method and reason codes (-1 = none),
    score, the rule (index in RULES) that found a street lacking the number (-1 = none yet), and
    whether the row is still open."""

    row: np.ndarray
    status: np.ndarray
    method: np.ndarray
    reason: np.ndarray
    score: np.ndarray
    found_rule: np.ndarray
    pending: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "Outcome":
        return cls(np.full(n, -1, np.int64), np.zeros(n, np.int8), np.full(n, -1, np.int8),
                   np.full(n, -1, np.int8), np.zeros(n), np.full(n, -1, np.int8), np.ones(n, bool))

    def settle(self, rows: np.ndarray, found_row: np.ndarray, tie: np.ndarray, method,
               score, is_alt: np.ndarray) -> None:
        """Record matches (and range ties) for `rows`; an exact match on an alternate name is
        alt_name. `method` is one METHODS name or a code per row, `score` one value or one per row."""
        method = np.broadcast_to(np.asarray(_METHOD[method] if isinstance(method, str) else method,
                                            np.int8), rows.shape)
        score = np.broadcast_to(np.asarray(score, dtype=float), rows.shape)
        self.row[rows] = found_row
        self.status[rows] = np.where(tie, 2, 1)
        alt = ~tie & is_alt[np.maximum(found_row, 0)] & (method == _METHOD["exact"])
        self.method[rows] = np.where(alt, _METHOD["alt_name"], method)
        self.score[rows] = np.where(alt, 0.98, score)
        self.reason[rows] = np.where(tie, _REASON["several_ranges"], -1)
        self.pending[rows] = False


def candidate_search(engine: Any, q: Queries, outcome: Outcome) -> None:
    """Settle the rows the fast path (run first) left open; what stays open ends as no_match
    with a reason."""
    open_rows = outcome.pending & q.has_number
    if open_rows.any() and len(q.street):
        zip_known = np.array([engine.catalogue.has_scope("zip", z) for z in q.zip_uniques])
        known = zip_known[q.zip_codes]
        has_state = np.array([s != "" for s in q.state_uniques])[q.state_codes]
        scopes = {"zip": known, "county": known, "state": ~known & has_state,
                  "any": ~known & ~has_state}
        # Streets whose name and full name are nowhere imported can only be misspellings.
        spelled = engine.catalogue.knows(q.street[:, 0], q.street[:, 2])[q.street_codes]
        # Each rule in every scope before the next, weaker rule: a street written exactly but
        # in another ZIP of the county beats a suffix or spelling change in the delivered ZIP.
        # Once a rule finds the street, weaker rules are not tried for that row.
        for rule_no, rule in enumerate(RULES):
            for scope, in_scope in scopes.items():
                if rule == "fuzzy_name" and scope == "zip":
                    continue  # misspellings are ranked county-wide, preferring the ZIP
                eligible = in_scope & ((outcome.found_rule < 0) | (outcome.found_rule == rule_no))
                if rule != "fuzzy_name":
                    eligible &= spelled
                if rule == "exact" and scope == "zip":
                    _note_exact_in_zip(engine, q, outcome, eligible, rule_no)
                else:
                    _stage(engine, q, outcome, scope, eligible, rule_no)
    left = outcome.pending
    outcome.reason[left] = np.where(~q.has_number[left], _REASON["no_house_number"],
                                    np.where(outcome.found_rule[left] >= 0,
                                             _REASON["number_out_of_range"],
                                             _REASON["street_not_found"]))
    outcome.pending[:] = False


def _note_exact_in_zip(engine: Any, q: Queries, outcome: Outcome, eligible: np.ndarray,
                       rule_no: int) -> None:
    """The exact rule in the delivered ZIP: the fast path already searched these very keys there,
    so what is left is to note the streets that exist (their number is outside every range)."""
    rows = np.flatnonzero(outcome.pending & q.has_number & eligible)
    if len(rows) == 0:
        return
    combo = q.street_codes[rows] * (len(q.zip_uniques) + 1) + q.zip_codes[rows]
    distinct, inverse = np.unique(combo, return_inverse=True)
    street_ids, zip_ids = np.divmod(distinct, len(q.zip_uniques) + 1)
    resolve = engine.catalogue.resolve
    exists = np.array([bool(resolve(*q.street[s], "zip", q.zip_uniques[z], "exact").streets)
                       for s, z in zip(street_ids.tolist(), zip_ids.tolist())], bool)
    outcome.found_rule[rows[exists[inverse]]] = rule_no


def _qualifiers(engine: Any, q: Queries, scope: str, rows: np.ndarray) -> tuple[np.ndarray, list]:
    """(qualifier group per row, the qualifiers of each group): ZIP, its counties, or the state."""
    if scope in ("zip", "county"):
        codes, uniques = q.zip_codes[rows], q.zip_uniques
        if scope == "zip":
            return codes, [(z,) for z in uniques]
        return codes, [engine.catalogue.zip_counties.get(z, ()) for z in uniques]
    if scope == "state":
        return q.state_codes[rows], [(s,) for s in q.state_uniques]
    return np.zeros(len(rows), np.int64), [("",)]


def _resolve(engine: Any, keys: tuple, scope: str, qualifiers: tuple, rule: str,
             zip5: str) -> Resolution:
    """One street query under one rule in every qualifier of its scope; memoised on the engine."""
    memo = engine.resolved
    if len(memo) > MEMO_LIMIT:
        memo.clear()
    found = [(qualifier, _resolve_in(engine, keys, scope, qualifier, rule, zip5))
             for qualifier in qualifiers]
    if len(found) == 1:  # the common case
        qualifier, resolution = found[0]
        if not resolution.streets:
            return resolution  # nothing or a tie, as it is
        return Resolution(tuple((s, qualifier) for s in resolution.streets), resolution.method,
                          resolution.score)
    if any(r.tie for _, r in found):
        return Resolution((), None, 0.0, tie=True)
    hits = [(qualifier, r) for qualifier, r in found if r.streets]
    if not hits:
        return Resolution((), None, 0.0)
    method, score = hits[0][1].method, hits[0][1].score
    return Resolution(tuple((s, qualifier) for qualifier, r in hits for s in r.streets), method, score)


def _resolve_in(engine: Any, keys: tuple, scope: str, qualifier: str, rule: str,
                zip5: str) -> Resolution:
    """One street query under one rule in one qualifier, memoised."""
    fuzzy = rule == "fuzzy_name"
    key = (*keys, scope, qualifier, rule, zip5 if fuzzy else None)
    resolution = engine.resolved.get(key)
    if resolution is None:
        resolution = engine.resolved[key] = \
            engine.catalogue.resolve_misspelled(*keys, scope, qualifier, zip5) if fuzzy \
            else engine.catalogue.resolve(*keys, scope, qualifier, rule)
    return resolution


def _stage(engine: Any, q: Queries, outcome: Outcome, scope: str, eligible: np.ndarray,
           rule_no: int) -> None:
    rows = np.flatnonzero(outcome.pending & q.has_number & eligible)
    if len(rows) == 0:
        return
    group_codes, groups = _qualifiers(engine, q, scope, rows)
    combo = q.street_codes[rows] * (len(groups) + 1) + group_codes
    distinct, inverse = np.unique(combo, return_inverse=True)
    street_ids, group_ids = np.divmod(distinct, len(groups) + 1)
    keys = q.street[street_ids]
    zips = q.zip_uniques if scope == "county" else [""] * len(groups)
    if RULES[rule_no] == "fuzzy_name":  # every name of the stage searched in one batch
        engine.catalogue.prepare_misspelled(keys[:, 2])
    resolutions = [_resolve(engine, tuple(k), scope, groups[g], RULES[rule_no], zips[g])
                   for k, g in zip(keys.tolist(), group_ids.tolist())]
    tie = np.array([r.tie for r in resolutions], bool)[inverse]
    if tie.any():
        outcome.status[rows[tie]] = 2
        outcome.reason[rows[tie]] = _REASON["several_streets"]
        outcome.pending[rows[tie]] = False
    has_streets = np.array([bool(r.streets) for r in resolutions], bool)[inverse]
    _lookup(engine, q, outcome, scope, rows[has_streets], inverse[has_streets], resolutions)
    lacking = rows[has_streets][outcome.pending[rows[has_streets]]]
    outcome.found_rule[lacking] = rule_no


def _lookup(engine: Any, q: Queries, outcome: Outcome, scope: str, rows: np.ndarray,
            which: np.ndarray, resolutions: list[Resolution]) -> None:
    """Find the number in the candidate streets' ranges (rows[i] uses resolutions[which[i]]);
    several edge sides are a tie."""
    if len(rows) == 0:
        return
    texts = [[street if scope == "any" else f"{street}|{qualifier}" for street, qualifier in r.streets]
             for r in resolutions]
    counts = np.array([len(t) for t in texts])
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    flat_text = np.array([t for group in texts for t in group] or [""], dtype=object)
    per_row = counts[which]
    ex_row = np.repeat(rows, per_row)
    # Position of each exploded entry in flat_text: its resolution's start + 0..count-1.
    offsets = np.arange(len(ex_row)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    ex_text = np.repeat(starts[which], per_row) + offsets
    number = q.number[ex_row]
    found_row = np.full(len(ex_row), -1, np.int64)
    count = np.zeros(len(ex_row), np.int8)
    for parity, mask in ((PARITY_ODD, number % 2 == 1), (PARITY_EVEN, number % 2 == 0)):
        idx = np.flatnonzero(mask)
        if len(idx):
            level = engine._level("key_full", scope, parity)
            codes = level.groups.get_indexer(flat_text)
            found_row[idx], count[idx] = engine._candidates(level, codes[ex_text[idx]], number[idx])
    chosen, n_sides = _per_row(engine, ex_row, found_row, count)
    method = np.array([_METHOD.get(r.method, -1) for r in resolutions], np.int8)
    score = np.array([r.score for r in resolutions])
    if scope != "zip":  # a misspelling is searched county-wide; it keeps its own name
        relaxed = np.isin(method, [_METHOD[m] for m in ("exact", "alt_name", "directional", "no_suffix")])
        method = np.where(relaxed, _METHOD["zip_fallback"], method).astype(np.int8)
        score = np.where(relaxed, score * ZIP_FALLBACK_FACTOR, score)
    settled = n_sides[rows] > 0
    outcome.settle(rows[settled], chosen[rows[settled]], n_sides[rows[settled]] >= 2,
                   method[which[settled]], score[which[settled]], engine._is_alt)


def _per_row(engine: Any, ex_row: np.ndarray, found_row: np.ndarray, count: np.ndarray):
    """For exploded candidates: each row's chosen range row and its number of distinct edge
    sides (2 = two or more), over all of the row's candidate streets."""
    n = int(ex_row.max()) + 1 if len(ex_row) else 0
    n_sides = np.zeros(n, np.int64)
    chosen = np.full(n, -1, np.int64)
    np.maximum.at(n_sides, ex_row[count >= 2], 2)
    single = count == 1
    rows_i, found_i = ex_row[single], found_row[single]
    identity = engine._identity[found_i]
    # Prefer a primary name's row over an alternate's for the same edge side.
    order = np.lexsort((engine._is_alt[found_i], identity, rows_i))
    rows_i, identity, found_i = rows_i[order], identity[order], found_i[order]
    first = np.r_[True, (rows_i[1:] != rows_i[:-1]) | (identity[1:] != identity[:-1])] \
        if len(rows_i) else np.zeros(0, bool)
    distinct_rows = rows_i[first]
    np.add.at(n_sides, distinct_rows, 1)
    chosen[distinct_rows[::-1]] = found_i[first][::-1]
    return chosen, n_sides
