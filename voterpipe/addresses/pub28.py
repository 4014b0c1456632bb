"""The USPS Publication 28 street-part standardiser shared by the address normaliser and the TIGER
geocoder, and unit standardisation; the tables (C1, C2, directionals) live in pub28_tables.

`standardize_street_parts(pre_dir, street_name, street_type, post_dir)` returns the four parts
standardised by these rules (the geocoder applies it to TIGER names, the normaliser to voter
addresses, so both meet on identical strings):

1. Every part is upper-cased; periods, commas and apostrophes are dropped (``U.S.`` -> ``US``,
   ``O'NEAL`` -> ``ONEAL``); runs of whitespace become one space; ``None`` becomes ``''``.
2. Directionals (pre and post) take their Pub 28 abbreviation: NORTH -> N, NORTH EAST -> NE, ...
   A value that is not a directional is kept as written.
3. The street type takes its C1 standard abbreviation: AVENUE/AV/AVEN -> AVE, STREET -> ST,
   HIGHWAY/HWY -> HWY, ... An unknown type is kept as written.
4. In the street name, ordinals become digits plus suffix: FIRST and 1st -> ``1ST``;
   TWENTY FIRST / TWENTY-FIRST -> ``21ST``; a wrong ordinal suffix is fixed (``21TH`` -> ``21ST``);
   leading zeros are dropped (``01ST`` -> ``1ST``, ``054`` -> ``54``).
5. Route-style names are spelled the Pub 28 way: HWY/HIWAY/HIGHWY/HWAY before another token ->
   HIGHWAY (``HWY 54`` -> ``HIGHWAY 54``); ``U S`` -> ``US``; RTE/RT before a number -> ROUTE;
   CO RD / CNTY RD / CR before a number -> COUNTY ROAD; ST HWY -> STATE HIGHWAY.
   A purely numeric name whose type is a highway or route (``54`` + ``HWY``) becomes the prefixed
   name (``HIGHWAY 54``, type ``''``), which is how one-line addresses ``123 HWY 54`` parse.
6. Structural repairs, so piecewise and one-line inputs agree:
   - a "pre-directional" that is no directional is a word of the name ('AVE', 'OF SCIENCE');
     a "type" that is a number is the end of the name ('STATE ROAD', '7' -> 'STATE ROAD 7');
   - an empty name with a pre-directional is a directional-named street: ('N', '', 'ST', '') ->
     ('', 'N', 'ST', '') (``N ST`` is the street called N); likewise with only a post-directional;
   - an empty name with only a type is a type-named street: ('', '', 'CIRCLE', '') -> name CIRCLE;
   - a name whose first of several words is a directional, with no pre_dir, is split:
     ('', 'NORTH MAIN', 'ST', '') -> ('N', 'MAIN', 'ST', '');
   - a name whose last of several words is a C1 suffix, with no type, is split:
     ('', 'OLD US 1 HWY', '', '') -> ('', 'OLD US 1', 'HWY', '');
   - a type of several words ending in a C1 suffix keeps that suffix and gives the other words to
     the name: ('', 'AVALON', 'RIDGE PARKWAY', '') -> ('', 'AVALON RIDGE', 'PKWY', '');
   - a directional after a route number, with no type, is the post-directional:
     ('', 'FM 2972 WEST', '', '') -> ('', 'FM 2972', '', 'W').
   A directional or suffix word that IS the whole name is never abbreviated (``NORTH ST`` keeps
   the name NORTH, ``PARK AVE`` keeps PARK).

The function is pure and memoised; `STREET_RULES_VERSION` changes whenever a rule here changes.
"""

from __future__ import annotations

import re
from functools import lru_cache

from voterpipe.addresses.pub28_tables import (  # noqa: F401  (the tables, re-exported)
    DIRECTION_ABBREVIATIONS, DIRECTIONALS, SECONDARY_UNITS, STANDARD_SUFFIXES, STATE_CODES,
    STREET_SUFFIXES, UNITS_WITHOUT_NUMBER,
)

STREET_RULES_VERSION = 3

_UNITS = ["", "FIRST", "SECOND", "THIRD", "FOURTH", "FIFTH", "SIXTH", "SEVENTH", "EIGHTH", "NINTH"]
_TEENS = ["TENTH", "ELEVENTH", "TWELFTH", "THIRTEENTH", "FOURTEENTH", "FIFTEENTH", "SIXTEENTH",
          "SEVENTEENTH", "EIGHTEENTH", "NINETEENTH"]
_TENS_CARDINAL = ["", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"]
_TENS_ORDINAL = ["", "", "TWENTIETH", "THIRTIETH", "FORTIETH", "FIFTIETH", "SIXTIETH", "SEVENTIETH",
                 "EIGHTIETH", "NINETIETH"]


def ordinal_suffix(n: int) -> str:
    return "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")


def _ordinal(n: int) -> str:
    return f"{n}{ordinal_suffix(n)}"


ORDINAL_WORDS: dict[str, str] = {}
for _n in range(1, 10):
    ORDINAL_WORDS[_UNITS[_n]] = _ordinal(_n)
for _n, _w in enumerate(_TEENS):
    ORDINAL_WORDS[_w] = _ordinal(10 + _n)
for _t in range(2, 10):
    ORDINAL_WORDS[_TENS_ORDINAL[_t]] = _ordinal(10 * _t)
ORDINAL_WORDS["HUNDREDTH"] = "100TH"
# Compound ordinals as two words ("TWENTY FIRST") are handled in _standardize_name.
_TENS_VALUE = {w: 10 * i for i, w in enumerate(_TENS_CARDINAL) if w}

_NUMERIC_ORDINAL = re.compile(r"^0*(\d+)(ST|ND|RD|TH)$")
_PUNCTUATION = str.maketrans({".": "", ",": " ", "'": "", "`": ""})
_HIGHWAY_WORDS = frozenset({"HWY", "HIGHWAY", "HIGHWY", "HIWAY", "HIWY", "HWAY"})
ROUTE_TYPES = frozenset({"HWY", "RTE"})
# Words after which a number (or letter) is a route number (Pub 28 237).
ROUTE_WORDS = _HIGHWAY_WORDS | frozenset({"ROUTE", "RTE", "RT", "FM"})
# Words that say whose highway it is (US HIGHWAY 50, AL HIGHWAY 157), not what it is called.
HIGHWAY_QUALIFIERS = STATE_CODES | frozenset({"US", "STATE", "COUNTY", "CNTY", "ST", "OLD"})


def clean_text(value: str | None) -> str:
    """Upper-case, drop periods/apostrophes, commas to spaces, squeeze whitespace."""
    if not value:
        return ""
    return " ".join(value.upper().translate(_PUNCTUATION).split())


def standardize_directional(value: str | None) -> str:
    text = clean_text(value)
    return DIRECTIONALS.get(text, text)


def standardize_suffix(value: str | None) -> str:
    text = clean_text(value)
    return STREET_SUFFIXES.get(text, text)


def _standardize_name_tokens(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < n else ""
        # Compound ordinals: TWENTY FIRST, TWENTY-FIRST.
        if "-" in tok:
            left, _, right = tok.partition("-")
            if left in _TENS_VALUE and right in ORDINAL_WORDS and int(ORDINAL_WORDS[right][:-2]) < 10:
                out.append(_ordinal(_TENS_VALUE[left] + int(ORDINAL_WORDS[right][:-2])))
                i += 1
                continue
        if tok in _TENS_VALUE and nxt in ORDINAL_WORDS and int(ORDINAL_WORDS[nxt][:-2]) < 10:
            out.append(_ordinal(_TENS_VALUE[tok] + int(ORDINAL_WORDS[nxt][:-2])))
            i += 2
            continue
        if tok in ORDINAL_WORDS:
            out.append(ORDINAL_WORDS[tok])
            i += 1
            continue
        m = _NUMERIC_ORDINAL.match(tok)
        if m:
            out.append(_ordinal(int(m.group(1))))
            i += 1
            continue
        if tok == "#" and out and out[-1] in ROUTE_WORDS:
            i += 1  # HIGHWAY # 54, ROUTE # A: the number sign before a route number is dropped
            continue
        if tok in _HIGHWAY_WORDS and nxt:
            out.append("HIGHWAY")
            i += 1
            continue
        if tok == "U" and nxt == "S":
            out.append("US")
            i += 2
            continue
        if tok in ("RT", "RTE") and nxt[:1].isdigit():
            out.append("ROUTE")
            i += 1
            continue
        if tok == "CR" and nxt[:1].isdigit():
            out.extend(("COUNTY", "ROAD"))
            i += 1
            continue
        if tok in ("CO", "CNTY", "COUNTY") and nxt in ("RD", "ROAD"):
            out.extend(("COUNTY", "ROAD"))
            i += 2
            continue
        if tok in ("ST", "STATE") and nxt in _HIGHWAY_WORDS:
            out.extend(("STATE", "HIGHWAY"))
            i += 2
            continue
        if tok.isdigit() and tok[0] == "0" and len(tok) > 1:
            tok = tok.lstrip("0") or "0"
        out.append(tok)
        i += 1
    return out


def _repair_structure(pre_raw: str, tokens: list[str], stype_raw: str,
                      post_raw: str) -> tuple[str, list[str], str, str]:
    """The structural repairs of rule 6 on cleaned words (pre, name tokens, type, post)."""
    if pre_raw and pre_raw not in DIRECTIONALS and pre_raw not in DIRECTION_ABBREVIATIONS:
        tokens, pre_raw = pre_raw.split() + tokens, ""  # not a directional: a word of the name
    if stype_raw.isdigit():
        tokens, stype_raw = tokens + [stype_raw], ""  # no suffix is a number: STATE ROAD 7
    if " " in stype_raw and stype_raw not in STREET_SUFFIXES:
        # The suffix is one word: in RIDGE PARKWAY only PARKWAY is; RIDGE belongs to the name.
        *more_name, last = stype_raw.split()
        if last in STREET_SUFFIXES:
            tokens, stype_raw = tokens + more_name, last
    if not pre_raw and len(tokens) >= 2 and tokens[0] in DIRECTIONALS:
        pre_raw = tokens.pop(0)
    if not stype_raw and len(tokens) >= 2 and tokens[-1] in STREET_SUFFIXES:
        stype_raw = tokens.pop()
    if (not stype_raw and not post_raw and len(tokens) >= 2 and tokens[-1] in DIRECTIONALS
            and any(c.isdigit() for c in tokens[-2])):
        post_raw = tokens.pop()  # FM 2972 WEST: the directional after a route number is the post
    return pre_raw, tokens, stype_raw, post_raw


@lru_cache(maxsize=200_000)
def standardize_street_parts(pre_dir: str, street_name: str, street_type: str,
                             post_dir: str) -> tuple[str, str, str, str]:
    """Standardise (pre_dir, street_name, street_type, post_dir) by the module's rules."""
    pre_raw, name, stype_raw, post_raw = (clean_text(pre_dir), clean_text(street_name),
                                          clean_text(street_type), clean_text(post_dir))
    # Structural repairs first, on the cleaned words.
    if not name:
        if pre_raw and not post_raw:
            name, pre_raw = pre_raw, ""
        elif post_raw and not pre_raw:
            name, post_raw = post_raw, ""
        elif stype_raw and not pre_raw and not post_raw:
            name, stype_raw = stype_raw, ""
    pre_raw, tokens, stype_raw, post_raw = _repair_structure(pre_raw, name.split(), stype_raw, post_raw)
    pre = DIRECTIONALS.get(pre_raw) or DIRECTION_ABBREVIATIONS.get(pre_raw, pre_raw)
    post = DIRECTIONALS.get(post_raw) or DIRECTION_ABBREVIATIONS.get(post_raw, post_raw)
    stype = STREET_SUFFIXES.get(stype_raw, stype_raw)
    tokens = _standardize_name_tokens(tokens)
    if stype in ROUTE_TYPES and len(tokens) == 1 and tokens[0].isdigit():
        tokens = ["HIGHWAY" if stype == "HWY" else "ROUTE", tokens[0]]
        stype = ""
    return pre, " ".join(tokens), stype, post


def standardize_unit(unit_type: str | None, unit_number: str | None) -> tuple[str, str]:
    """(designator, identifier): designator to its C2 abbreviation, '#' and leading zeros dropped."""
    designator = clean_text(unit_type)
    designator = SECONDARY_UNITS.get(designator, designator)
    ident = clean_text(unit_number).replace("#", " ").strip()
    ident = "".join(ident.split()) if len(ident) <= 6 else " ".join(ident.split())
    if ident.isdigit():
        ident = ident.lstrip("0") or "0"
    if not designator and SECONDARY_UNITS.get(ident) in UNITS_WITHOUT_NUMBER:
        designator, ident = SECONDARY_UNITS[ident], ""  # "REAR" alone is a designator
    if ident and not designator:
        designator = "#"
    return designator, ident
