"""Which TIGER street an address means when its name is not written exactly as TIGER has it.

resolve() and resolve_misspelled() apply one rule within one scope (a ZIP, a county, a state)
and return the candidate streets (their full keys), or a tie, or nothing. They never guess: a
rule that leaves more than one street is a tie. The house number then picks the range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from voterpipe.geocode.tiger_names import key_spellings

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
FUZZY_MIN_LENGTH = 4  # shorter names are too close to each other to correct
NEAR_MEMO_LIMIT = 500_000  # misspelled names remembered (a long-running server sees many)
LONG_NAME = 9  # imported names this long may be two edits away from what was written

_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Resolution:
    streets: tuple[str, ...]  # key_full values of the candidate streets ('' tuple = none)
    method: str | None  # the rule that found them; None when nothing or a tie
    score: float
    tie: bool = False


NOTHING = Resolution((), None, 0.0)
STREET_TIE = Resolution((), None, 0.0, tie=True)


@lru_cache(maxsize=65536)
def phonetic_key(text: str) -> str:
    """American Soundex of each word (letters only), joined: a second signal for a misspelling."""
    codes = {**dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"),
             **dict.fromkeys("DT", "3"), "L": "4", **dict.fromkeys("MN", "5"), "R": "6"}
    keys = []
    for word in re.findall(r"[A-Z]+|\d+", text.upper()):
        if word.isdigit():
            keys.append(word)
            continue
        out, last = word[0], codes.get(word[0], "")
        for char in word[1:]:
            code = codes.get(char, "")
            if code and code != last:
                out += code
            if char not in "HW":
                last = code
        keys.append((out + "000")[:4])
    return " ".join(keys)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours is one edit); limit + 1 if above."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    # A common prefix and suffix cost nothing: align only the differing middle.
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[max(start - 1, 0):len(a) - max(end - 1, 0)], b[max(start - 1, 0):len(b) - max(end - 1, 0)]
    previous2, previous = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def one_edit_apart(a: str, b: str) -> bool:
    """True when b is a one letter substitution, insertion, deletion or neighbour swap of a."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1:]
    if a[i + 1:] == b[i + 1:]:
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]


def _deletions(word: str, depth: int) -> set[str]:
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


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
        # Deletion neighbourhoods of every spelling of every name -> (spelling, name key).
        self._fuzzy_index: dict[str, set[tuple[str, str]]] = {}
        self._near: dict[str, list[tuple[str, int, int]]] = {}  # memo of _near_names
        for base in {b for names in self._scopes.values() for b in names}:
            for spelling in key_spellings(base):
                if len(spelling) >= FUZZY_MIN_LENGTH:
                    for variant in _deletions(spelling, 2 if len(spelling) >= LONG_NAME else 1):
                        self._fuzzy_index.setdefault(variant, set()).add((spelling, base))

    def forget_near_names(self) -> None:
        """Drop the misspelling memo (benchmarks time a cold search)."""
        self._near.clear()

    def knows(self, full: str, base: str) -> bool:
        """Whether some imported street has this full name or this name (in any scope)."""
        return full in self._fulls.get(("any", ""), ()) or base in self._scopes.get(("any", ""), {})

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

    def _near_names(self, base: str) -> list[tuple[str, int, int]]:
        """Every imported name key within reach of `base`: (key, edits, 0 if same sound else 1).
        One edit first; two only between long names and only when nothing is one edit away.
        Digits are never edited (13TH is not 14TH)."""
        if base in self._near:
            return self._near[base]
        if len(self._near) > NEAR_MEMO_LIMIT:
            self._near.clear()
        near: dict[str, tuple[int, int]] = {}
        if len(base) >= FUZZY_MIN_LENGTH:
            digits, sound = _DIGITS.findall(base), phonetic_key(base)
            index = self._fuzzy_index
            ring = [base[:i] + base[i + 1:] for i in range(len(base))]  # one deletion
            pool: set[tuple[str, str]] = set(index.get(base, ()))
            for depth in (1, 2) if len(base) >= LONG_NAME - 2 else (1,):
                if depth == 2:  # only when nothing was one edit away; the pool grows
                    ring = {w[:i] + w[i + 1:] for w in ring for i in range(len(w))}
                for variant in ring:
                    hit = index.get(variant)
                    if hit:
                        pool.update(hit)
                for spelling, key in pool:
                    if key == base or spelling == base or _DIGITS.findall(spelling) != digits:
                        continue
                    if depth == 1:
                        distance = 1 if one_edit_apart(base, spelling) else 9
                    else:
                        distance = edit_distance(base, spelling, 2) if len(spelling) >= LONG_NAME else 9
                    if distance <= depth:
                        tier = (distance, 0 if phonetic_key(spelling) == sound else 1)
                        near[key] = min(near.get(key, tier), tier)
                if near:
                    break
        self._near[base] = [(key, *tier) for key, tier in near.items()]
        return self._near[base]

    def _misspelled(self, base: str, names: dict, zip_names: dict) -> tuple[str, float] | str | None:
        """(the one name of `names` closest to `base`, its score); '' when several are equally
        close. Fewer edits win, then a same phonetic key, then being in the delivered ZIP."""
        best: dict[tuple[int, int, int], list[str]] = {}
        for key, distance, sound in self._near_names(base):
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
