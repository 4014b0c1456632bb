"""Which TIGER street an address means when its name is not written exactly as TIGER has it.

resolve() and resolve_misspelled() apply one rule within one scope (a ZIP, a county, a state)
and return the candidate streets (their full keys), or a tie, or nothing. They never guess: a
rule that leaves more than one street is a tie. The house number then picks the range.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd

from voterpipe.geocode.tiger_spelling import NearNames

METHODS = ("exact", "alt_name", "directional", "no_suffix", "fuzzy_name", "zip_fallback")
# Spelling rules, strongest first; each is tried in every scope before the next one.
RULES = ("exact", "directional", "no_suffix", "fuzzy_name")
REASONS = ("no_house_number", "street_not_found", "number_out_of_range", "several_streets",
           "several_ranges")
# Scores: how much each rule relaxes; the ZIP fallback multiplies in.
SCORES = {"exact": 1.0, "alt_name": 0.98, "directional": 0.95, "no_suffix": 0.9}
# Misspellings by (edits, 0 if the phonetic key agrees else 1).
FUZZY_SCORES = {(1, 0): 0.85, (1, 1): 0.8, (2, 0): 0.75, (2, 1): 0.7}
ZIP_FALLBACK_FACTOR = 0.9


class Resolution(NamedTuple):  # a tuple: made tens of thousands of times per batch
    streets: tuple[str, ...]  # key_full values of the candidate streets ('' tuple = none)
    method: str | None  # the rule that found them; None when nothing or a tie
    score: float
    tie: bool = False


NOTHING = Resolution((), None, 0.0)
STREET_TIE = Resolution((), None, 0.0, tie=True)


class StreetCatalogue:
    """Distinct TIGER streets per scope: (scope, qualifier) -> base name -> name+type -> full keys.

    Scopes: 'zip' (qualifier = ZIP), 'county' (SSCCC), 'state' (postal code), 'any' ('').
    """

    def __init__(self, streets: pd.DataFrame):
        """`streets`: distinct rows of key_full, key_nodir, key_base, zip, county, state."""
        self._scopes: dict[tuple[str, str], dict[str, dict[str, set[str]]]] = {}
        self._fulls: dict[tuple[str, str], set[str]] = {}
        columns = ("key_full", "key_nodir", "key_base", "zip", "county", "state")
        for full, nodir, base, zip5, county, state in streets[list(columns)].itertuples(index=False):
            for scope in (("zip", zip5), ("county", county), ("state", state), ("any", "")):
                names = self._scopes.setdefault(scope, {})
                names.setdefault(base, {}).setdefault(nodir, set()).add(full)
                self._fulls.setdefault(scope, set()).add(full)
        self.zip_counties: dict[str, tuple[str, ...]] = {
            z: tuple(sorted(g)) for z, g in streets.groupby("zip")["county"].unique().items()}
        self._near = NearNames({b for names in self._scopes.values() for b in names})

    def forget_near_names(self) -> None:
        """Drop the misspelling memo (benchmarks time a cold search)."""
        self._near.forget()

    def prepare_misspelled(self, bases: Iterable[str]) -> None:
        """Search the names of `bases` for misspellings all at once (resolve_misspelled then
        finds them in the memo)."""
        self._near.prepare(bases)

    def knows(self, fulls: Iterable[str], bases: Iterable[str]) -> np.ndarray:
        """Per street: whether some imported street has this full name or this name (any scope)."""
        known_fulls = self._fulls.get(("any", ""), set())
        known_bases = self._scopes.get(("any", ""), {})
        return np.array([f in known_fulls or b in known_bases for f, b in zip(fulls, bases)], bool)

    def has_scope(self, scope: str, qualifier: str) -> bool:
        return (scope, qualifier) in self._scopes

    def resolve(self, full: str, nodir: str, base: str, scope: str, qualifier: str,
                rule: str) -> Resolution:
        """The streets of (scope, qualifier) that the query's keys mean under one spelling rule:
        'exact' (the full name), 'directional' (same name and type, any directional) or
        'no_suffix' (the one street of that name, whatever its type; several are a tie)."""
        names = self._scopes.get((scope, qualifier))
        if not names or not base:
            return NOTHING
        if rule == "exact":
            found = full in self._fulls[(scope, qualifier)]
            return Resolution((full,), "exact", SCORES["exact"]) if found else NOTHING
        variants = names.get(base)
        if not variants:
            return NOTHING
        if rule == "directional" or nodir in variants:
            streets = variants.get(nodir)
            return Resolution(tuple(sorted(streets)), "directional", SCORES["directional"]) \
                if streets and rule == "directional" else NOTHING
        if len(variants) == 1:
            (streets,) = variants.values()
            return Resolution(tuple(sorted(streets)), "no_suffix", SCORES["no_suffix"])
        return STREET_TIE

    def resolve_misspelled(self, full: str, nodir: str, base: str, scope: str, qualifier: str,
                           zip5: str = "") -> Resolution:
        """The streets meant by a name that (scope, qualifier) does not hold but that is close to
        one it does (see _misspelled); the delivered ZIP's streets are preferred."""
        names = self._scopes.get((scope, qualifier))
        if not names or not base or base in names:
            return NOTHING
        zip_names = self._scopes.get(("zip", zip5), {})
        corrected = self._misspelled(base, names, zip_names)
        if corrected is None or corrected == "":
            return STREET_TIE if corrected == "" else NOTHING
        corrected, fuzzy_score = corrected
        fixed_nodir = _replace_base(nodir, base, corrected)
        fixed_full = _replace_base(full, base, corrected)
        for pool, scope_key in ((zip_names, ("zip", zip5)), (names, (scope, qualifier))):
            if corrected not in pool:
                continue
            if fixed_full in self._fulls[scope_key]:
                return Resolution((fixed_full,), "fuzzy_name", fuzzy_score)
            found = _by_name(pool, fixed_nodir, corrected)
            if found.tie:
                return found
            return Resolution(found.streets, "fuzzy_name", fuzzy_score * found.score)
        return NOTHING

    def _misspelled(self, base: str, names: dict, zip_names: dict) -> tuple[str, float] | str | None:
        """(the one name of `names` closest to `base`, its score); '' when several are equally
        close. Fewer edits win, then a same phonetic key, then being in the delivered ZIP."""
        best: dict[tuple[int, int, int], list[str]] = {}
        for key, distance, sound in self._near.near(base):
            if key in names:
                best.setdefault((distance, sound, 0 if key in zip_names else 1), []).append(key)
        if not best:
            return None
        tier = min(best)
        if len(best[tier]) > 1:
            return ""
        return best[tier][0], FUZZY_SCORES[tier[:2]]


def _by_name(names: dict, nodir: str, base: str) -> Resolution | None:
    """Streets of that name: all directional variants of name+type, or the only street of that
    name whatever its type; a tie when the name has several types; None when the name is absent."""
    variants = names.get(base)
    if not variants:
        return None
    if nodir in variants:
        return Resolution(tuple(sorted(variants[nodir])), "directional", SCORES["directional"])
    if len(variants) == 1:
        (streets,) = variants.values()
        return Resolution(tuple(sorted(streets)), "no_suffix", SCORES["no_suffix"])
    return STREET_TIE


def _replace_base(key: str, base: str, corrected: str) -> str:
    """`key` with the token run `base` replaced by `corrected`."""
    padded = f" {key} ".replace(f" {base} ", f" {corrected} ", 1)
    return padded.strip()
