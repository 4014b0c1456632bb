"""Misspelled street names: which imported names are one or two edits from a name as written.

NearNames keeps a deletion-neighbourhood (symmetric delete) index of every spelling of every
imported name, built once per engine load as sorted 64-bit hashes. A batch of written names is
searched at once: numba kernels hash their deletion variants and check the bounded edit distance
of the candidates the index names (a hash collision only adds a candidate the check refuses).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Iterable

import numpy as np

from voterpipe.geocode.tiger_names import key_spellings

FUZZY_MIN_LENGTH = 4  # shorter names are too close to each other to correct
LONG_NAME = 9  # imported names this long may be two edits away from what was written
NEAR_MEMO_LIMIT = 500_000  # misspelled names remembered (a long-running server sees many)

_DIGITS = re.compile(r"\d+")


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
    first = np.zeros(1, np.int64)
    return int(_kernels()[1](*_encode([a]), *_encode([b]), first, first, limit)[0])


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


class NearNames:
    """The imported names within reach of a written one: (name key, edits, 0 if same sound else 1).

    One edit first; two only between long names (the written one LONG_NAME - 2 letters or more,
    the imported spelling LONG_NAME or more) and only when nothing is one edit away. Digits are
    never edited (13TH is not 14TH). Each imported name is compared under all its spellings
    (tiger_names.key_spellings: "ML" also as "MILL").
    """

    def __init__(self, bases: Iterable[str]):
        pairs = sorted({(spelling, base) for base in bases for spelling in key_spellings(base)
                        if len(spelling) >= FUZZY_MIN_LENGTH})
        self._spelling = [s for s, _ in pairs]
        self._key = [b for _, b in pairs]
        self._digits = [_DIGITS.findall(s) for s in self._spelling]
        self._sound = [phonetic_key(s) for s in self._spelling]
        self._codes, self._starts, self._lengths = _encode(self._spelling)
        self._memo: dict[str, list[tuple[str, int, int]]] = {}
        self._index_arrays: tuple[np.ndarray, ...] | None = None  # built on the first search

    def forget(self) -> None:
        """Drop the memo of names searched (benchmarks time a cold search)."""
        self._memo.clear()

    def near(self, base: str) -> list[tuple[str, int, int]]:
        """Every imported name key within reach of `base` (see the class)."""
        found = self._memo.get(base)
        return found if found is not None else self._search([base])[base]

    def prepare(self, bases: Iterable[str]) -> None:
        """Search every name of `bases` not searched yet, all at once, into the memo."""
        todo = sorted({b for b in bases if b not in self._memo})
        if todo:
            self._search(todo)

    def _search(self, bases: list[str]) -> dict[str, list[tuple[str, int, int]]]:
        """base -> its near names for distinct `bases`, also kept in the memo."""
        if len(self._memo) + len(bases) > NEAR_MEMO_LIMIT:
            self._memo.clear()
        searchable = [b for b in bases if len(b) >= FUZZY_MIN_LENGTH and self._spelling]
        found = self._within(searchable, 1) if searchable else {}
        again = [b for b in searchable if not found.get(b) and len(b) >= LONG_NAME - 2]
        if again:
            found.update(self._within(again, 2))
        results = {base: [(key, *tier) for key, tier in found.get(base, {}).items()] for base in bases}
        self._memo.update(results)
        return results

    def _index(self) -> tuple[np.ndarray, ...]:
        """Hashes of every spelling's deletion variants (two deletions for long ones), sorted,
        with the spelling each comes from, and an open-addressing table of where each starts."""
        if self._index_arrays is None:
            depth = np.where(self._lengths >= LONG_NAME, 2, 1)
            hashes, owner = _variants(self._codes, self._starts, self._lengths, depth)
            order = np.argsort(hashes, kind="stable")
            hashes, owner = hashes[order], owner[order]
            first = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])  # run starts
            size = 1 << max(4, int(2 * len(first)).bit_length())  # at most half full
            table = _kernels()[2](hashes, first, np.full(size, -1, np.int64))
            self._index_arrays = (hashes, owner, table)
        return self._index_arrays

    def _within(self, bases: list[str], depth: int) -> dict[str, dict[str, tuple[int, int]]]:
        """base -> {name key: (edits, sound tier)} for the spellings `depth` edits or fewer away
        (depth 2: long spellings only)."""
        index_hash, index_spelling, table = self._index()
        codes, starts, lengths = _encode(bases)
        hashes, owner = _variants(codes, starts, lengths, np.full(len(bases), depth))
        query, spelling = _kernels()[3](table, index_hash, index_spelling, hashes, owner)
        if depth == 2:
            keep = self._lengths[spelling] >= LONG_NAME
            query, spelling = query[keep], spelling[keep]
        pair = np.unique(query * len(self._spelling) + spelling)
        query, spelling = pair // len(self._spelling), pair % len(self._spelling)
        distance = _kernels()[1](codes, starts, lengths, self._codes, self._starts, self._lengths,
                                 query, spelling, depth)
        found: dict[str, dict[str, tuple[int, int]]] = {}
        for q, s, d in zip(query.tolist(), spelling.tolist(), distance.tolist()):
            base, key, written = bases[q], self._key[s], self._spelling[s]
            if d == 0 or d > depth or key == base or written == base:
                continue
            if self._digits[s] != _DIGITS.findall(base):
                continue
            tier = (d, 0 if self._sound[s] == phonetic_key(base) else 1)
            near = found.setdefault(base, {})
            near[key] = min(near.get(key, tier), tier)
        return found


def _encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(code points of all texts, each one's start, each one's length)."""
    lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), np.uint32).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    return codes, starts, lengths


def _variants(codes, starts, lengths, depth) -> tuple[np.ndarray, np.ndarray]:
    """(hash, text number) of each text and its variants with up to `depth` letters deleted."""
    count = 1 + lengths + np.where(depth >= 2, lengths * (lengths - 1) // 2, 0)
    offsets = np.cumsum(count) - count
    hashes = np.empty(int(count.sum()), np.uint64)
    _kernels()[0](codes, starts, lengths, depth.astype(np.int64), offsets, hashes)
    return hashes, np.repeat(np.arange(len(lengths)), count)


def _variant_hashes(codes, starts, lengths, depth, offsets, out):
    """Polynomial 64-bit hash of each text with the letters `first` and `second` left out
    (-1: none): the text, each one-letter deletion, and each two-letter one when depth is 2."""
    for k in range(len(lengths)):
        s, n, o = starts[k], lengths[k], offsets[k]
        for first in range(-1, n):
            stop = n if first >= 0 and depth[k] >= 2 else -1
            second = -1
            while True:
                h = np.uint64(1469598103934665603)
                for i in range(n):
                    if i != first and i != second:
                        h = h * np.uint64(0x100000001B3) + np.uint64(codes[s + i] + 1)
                out[o] = h
                o += 1
                second = first + 1 if second < 0 else second + 1
                if second >= stop:
                    break
    return out


def _osa_distances(codes_a, starts_a, lengths_a, codes_b, starts_b, lengths_b, which_a, which_b,
                   limit):
    """Optimal string alignment distance of each pair (which_a[i], which_b[i]), limit + 1 if above."""
    out = np.empty(len(which_a), np.int64)
    for p in range(len(which_a)):
        sa, na = starts_a[which_a[p]], lengths_a[which_a[p]]
        sb, nb = starts_b[which_b[p]], lengths_b[which_b[p]]
        if abs(na - nb) > limit:
            out[p] = limit + 1
            continue
        before = np.empty(nb + 1, np.int64)
        previous = np.arange(nb + 1)
        current = np.empty(nb + 1, np.int64)
        best = 0
        for i in range(1, na + 1):
            current[0] = i
            best = i
            ca = codes_a[sa + i - 1]
            for j in range(1, nb + 1):
                cb = codes_b[sb + j - 1]
                value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
                if i > 1 and j > 1 and ca == codes_b[sb + j - 2] and codes_a[sa + i - 2] == cb:
                    value = min(value, before[j - 2] + 1)
                current[j] = value
                best = min(best, value)
            if best > limit:
                break
            before, previous, current = previous, current, before
        out[p] = min(previous[nb], limit + 1) if best <= limit else limit + 1
    return out


def _hash_table(hashes, first, table):
    """Open addressing: the slot of each distinct hash holds where its run starts in `hashes`."""
    mask = len(table) - 1
    for at in first:
        slot = _slot(hashes[at], mask)
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = at
    return table


def _candidate_pairs(table, index_hash, index_spelling, hashes, owner):
    """(query, spelling) for every index entry whose hash equals a query variant's hash."""
    mask = len(table) - 1
    total = 0
    for sweep in range(2):  # count, then fill
        if sweep == 1:
            query = np.empty(total, np.int64)
            spelling = np.empty(total, np.int64)
        n = 0
        for k in range(len(hashes)):
            h = hashes[k]
            slot = _slot(h, mask)
            while table[slot] >= 0 and index_hash[table[slot]] != h:
                slot = (slot + 1) & mask
            at = table[slot]
            if at < 0:
                continue
            while at < len(index_hash) and index_hash[at] == h:
                if sweep == 1:
                    query[n] = owner[k]
                    spelling[n] = index_spelling[at]
                n += 1
                at += 1
        total = n
    return query, spelling


def _slot(h, mask):
    return np.int64((h ^ (h >> np.uint64(29))) & np.uint64(mask))


_compiled: list = []
_compiled_lock = threading.Lock()


def warm_up() -> threading.Thread:
    """Load (or compile, the first time on a machine: seconds) the kernels on a background
    thread, so the first misspelling of a run does not wait for numba."""
    thread = threading.Thread(target=lambda: NearNames(["WARM UP NAME"]).near("WARM UPNAME"),
                              name="near-names-warm-up", daemon=True)
    thread.start()
    return thread


def _kernels() -> list:
    """[variant hashes, distances, hash table, candidate pairs], compiled by numba on first use
    (cached on disk; numba takes a moment to import, and only misspellings need it)."""
    with _compiled_lock:
        if not _compiled:
            import numba

            compile_ = numba.njit(nogil=True, cache=True)
            global _slot
            _slot = compile_(_slot)  # called from the kernels below: compiled first
            _compiled.extend([compile_(_variant_hashes), compile_(_osa_distances),
                              compile_(_hash_table), compile_(_candidate_pairs)])
        return _compiled
