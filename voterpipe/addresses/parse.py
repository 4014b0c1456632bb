"""Parse one residential address (a one-line string or the state's pieces) into standardised
Pub 28 components and a parse status.

Pipeline for a one-line address (`normalise_line`):

1. `preprocess_line`: upper-case, drop periods/apostrophes, squeeze whitespace, and split off a
   trailing NC-style unit (``123  MAIN ST   #4B`` -> ``123 MAIN ST`` + unit ``# 4B``; a
   designator just before or after the ``#`` is kept: ``APT #4``, ``# APT 4`` -> ``APT 4``). NC's
   artifact where a street suffix lands behind the ``#`` (``123 MAIN #RD``) is repaired when the
   rest has no suffix.
2. Tagging: the FAST PATH (`tag_fast`) recognises the common shape
   ``NUMBER [DIR] NAME... SUFFIX [DIR] [DESIGNATOR ID]`` with a hand-written grammar, restricted to
   shapes where it gives exactly the labels usaddress gives (a test checks this on >= 100,000
   strings); everything else goes to usaddress (`tag_full`), whose repeated labels `repeats`
   resolves where one reading is standard (several unit levels; a type word inside a name), and
   whose building-name reading of ``NUMBER NAME... SUFFIX`` is read as a street.
3. `standardize_tagged`: house number (leading zeros dropped, ``123 1/2``, ``123A``, number words
   ``ONE`` -> ``1``, grid numbers ``W156 N9762`` -> ``W156N9762``; it must hold a digit after at
   most two letters, or be lettered: ``B``, ``G-J``; an Address Number Prefix joins it: ``MILE K``
   -> ``MILEK``), `repairs` of usaddress readings (a designator-less "unit" that is a highway
   number, an ordinal street or a NO/SO directional; a one-letter number suffix or a fraction read
   apart from the number; a numberless "box" that is a street name),
   street parts through `pub28.standardize_street_parts` (a post-modifier such as EXT stays in
   the name), unit levels in the order written (`_units`), a status.

Statuses (schema.PARSE_STATUSES): ok; po_box; rural_route (RR/HC box); ambiguous (usaddress
raised RepeatedLabelError that `repeats` cannot resolve: we keep, for each label, the first
contiguous run of tokens, so ``123 MAIN ST APT 1 APT 2`` keeps APT 1);
unparseable (no house number or street name, intersections, free text); missing (blank or a
placeholder such as REMOVED / CONFIDENTIAL).

Piecewise states (MI, WA, ...) skip tagging (`normalise_pieces`) and go through step 3.
"""

from __future__ import annotations

import re

import usaddress

from voterpipe.addresses import pub28, repairs
from voterpipe.addresses.repeats import resolve_repeats, unit_levels

# Bump when any rule in this module, repeats or pub28 changes: it keys the persistent parse cache.
# A literal (read from source by the stage fingerprint); its part after the dot is
# pub28.STREET_RULES_VERSION (a test holds them together).
RULES_VERSION = "5.3"

# One parse result: these fields, in this order.
FIELDS = ("house_number", "pre_dir", "street_name", "street_type", "post_dir", "unit_type",
          "unit_number", "standardized_line", "parse_status")

MISSING_MARKERS = frozenset({
    "", "REMOVED", "CONFIDENTIAL", "WITHHELD", "UNKNOWN", "NONE", "NULL", "NA", "N/A",
    "ADDRESS CONFIDENTIAL", "NO ADDRESS", "NOT AVAILABLE",
})
_RURAL_GROUPS = {"RR": "RR", "R R": "RR", "RURAL ROUTE": "RR", "RURAL RT": "RR", "RURAL RTE": "RR",
                 "RT": "RR", "RTE": "RR", "ROUTE": "RR", "HC": "HC", "HCR": "HC",
                 "HIGHWAY CONTRACT": "HC", "HWY CONTRACT": "HC", "STAR ROUTE": "HC", "STAR RT": "HC"}

_TRANSLATE = str.maketrans({".": "", "'": "", "`": "", ",": " ", "\t": " ", "\x00": " "})
_NC_UNIT = re.compile(r"^(.*?\S)\s*#\s*([A-Z0-9][A-Z0-9-]{0,9})$")
_COUNTY_ROAD = [[county, road] for county in ("COUNTY", "CO", "CNTY", "STATE") for road in ("RD", "ROAD")]
_UNIT_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,9}$")
_FRACTION = re.compile(r"^\d+/\d+$")

MISSING_RESULT = ("", "", "", "", "", "", "", "", "missing")
UNPARSEABLE_RESULT = ("", "", "", "", "", "", "", "", "unparseable")


def preprocess_line(raw: str | None) -> tuple[str, str, str]:
    """(text to tag, unit designator, unit id) with the NC trailing ``#`` unit split off."""
    if not raw:
        return "", "", ""
    text = " ".join(raw.upper().translate(_TRANSLATE).split())
    if "#" not in text:
        return text, "", ""
    head, _, tail = text.rpartition("#")
    tail_words = tail.split()
    if (len(tail_words) == 2 and tail_words[0] in pub28.SECONDARY_UNITS and head.strip()
            and "#" not in head and _UNIT_ID.match(tail_words[1])):
        return head.rstrip(), tail_words[0], tail_words[1]  # "# APT 2": the designator names the unit
    m = _NC_UNIT.match(text)
    if not m:
        return text, "", ""
    head, unit = m.group(1), m.group(2)
    if "#" in head:
        return text, "", ""
    words = head.split()
    designator = "#"
    if len(words) > 1 and words[-1] in pub28.SECONDARY_UNITS:
        designator = words.pop()
    elif (unit in pub28.STREET_SUFFIXES and len(words) >= 2
          and words[-1] not in pub28.STREET_SUFFIXES and words[0][:1].isdigit()):
        # NC artifact "123 MAIN #RD": the suffix was keyed into the unit field.
        return " ".join(words + [unit]), "", ""
    elif _ends_with_route_word(words):
        return " ".join(words + [unit]), "", ""  # HWY #54: the route number, not a unit (Pub 28 237)
    return " ".join(words), designator, unit


def _ends_with_route_word(words: list[str]) -> bool:
    """NUMBER [QUALIFIERS] ROUTE-WORD: ``123 US HWY``, ``123 COUNTY RD``; not ``123 DIXIE HWY``,
    whose HWY is the suffix of a named street (then a '#' after it is a unit)."""
    if len(words) > 2 and words[-2:] in _COUNTY_ROAD:
        words = words[:-1]
    elif len(words) < 2 or words[-1] not in pub28.ROUTE_WORDS:
        return False
    return all(word in pub28.HIGHWAY_QUALIFIERS for word in words[1:-1])


# --- tagging ----------------------------------------------------------------------------------

_FAST_DIRS = frozenset({"N", "S", "E", "W", "NE", "NW", "SE", "SW"})
_FAST_UNIT_DESIGNATORS = frozenset({"APT", "UNIT", "STE", "LOT", "RM", "SPC", "TRLR"})
_FAST_NUMBER = re.compile(r"^[1-9]\d{0,5}$")
_FAST_NAME_WORD = re.compile(r"^[A-Z]{2,}$")
_FAST_ORDINAL = re.compile(r"^[1-9]\d{0,2}(ST|ND|RD|TH)$")
_FAST_UNIT_ID = re.compile(r"^[0-9]{1,4}[A-Z]?$|^[A-Z]$")
_FAST_SUFFIXES = frozenset({
    "ST", "AVE", "RD", "DR", "LN", "CT", "BLVD", "WAY", "PL", "CIR", "TRL", "PKWY", "TER",
})
# Words usaddress treats specially, or that make the shape unusual: never in a fast-path name.
_FAST_NAME_STOP = (frozenset(pub28.DIRECTIONALS) | frozenset(pub28.SECONDARY_UNITS)
                   | frozenset(pub28.ORDINAL_WORDS) | frozenset(_RURAL_GROUPS)
                   | frozenset({"HWY", "HIGHWAY", "US", "RT", "RTE", "ROUTE", "CR", "CO", "COUNTY",
                                "STATE", "PO", "BOX", "POB", "POST", "OFFICE", "AND", "OF", "THE",
                                "JR", "SR", "SAINT", "MT", "FT", "OLD", "NEW", "I", "FM", "SH",
                                "SUITE", "FLOOR", "BUILDING", "BLDG", "NUMBER", "NO", "ROOM",
                                "PARK", "PLAZA", "CENTER", "CTR", "TRACE", "CROSSING", "LOOP",
                                "ROW", "RUN", "PASS", "PATH", "WALK", "SQ", "SQUARE", "MALL",
                                "EXT", "EXTENSION", "BYPASS", "BYP", "SPUR", "PIKE"})
                   | _FAST_SUFFIXES)


def tag_fast(text: str) -> dict[str, str] | None:
    """usaddress-style labels for the common simple shape, or None to defer to usaddress."""
    tokens = text.split(" ")
    n = len(tokens)
    if n < 3 or n > 9 or not _FAST_NUMBER.match(tokens[0]):
        return None
    i = 1
    labels = {"AddressNumber": tokens[0]}
    if tokens[1] in _FAST_DIRS:
        labels["StreetNamePreDirectional"] = tokens[1]
        i = 2
    j = i
    while j < n and tokens[j] not in _FAST_SUFFIXES:
        tok = tokens[j]
        if tok in _FAST_NAME_STOP or not (_FAST_NAME_WORD.match(tok) or _FAST_ORDINAL.match(tok)):
            return None
        j += 1
    if j == i or j - i > 3 or j >= n:
        return None
    labels["StreetName"] = " ".join(tokens[i:j])
    labels["StreetNamePostType"] = tokens[j]
    j += 1
    if j < n and tokens[j] in _FAST_DIRS:
        labels["StreetNamePostDirectional"] = tokens[j]
        j += 1
    if j < n:
        if n - j != 2 or tokens[j] not in _FAST_UNIT_DESIGNATORS or not _FAST_UNIT_ID.match(tokens[j + 1]):
            return None
        labels["OccupancyType"] = tokens[j]
        labels["OccupancyIdentifier"] = tokens[j + 1]
    return labels


def tag_full(text: str) -> tuple[dict[str, str], str, bool]:
    """(labels, usaddress address type, ambiguous?) from usaddress, with the repeated-label fallback."""
    try:
        labels, kind = usaddress.tag(text)
        if kind == "Ambiguous" and "AddressNumber" not in labels and "StreetName" not in labels:
            simple = repairs.number_name_suffix(text)
            if simple:
                return simple, "Street Address", False
        return dict(labels), kind, False
    except usaddress.RepeatedLabelError as err:
        resolved = resolve_repeats([(label, token) for token, label in err.parsed_string])
        if resolved is not None:
            return resolved, "Street Address", False
        labels: dict[str, str] = {}
        previous = None
        for token, label in err.parsed_string:
            if label == previous and label in labels:
                labels[label] += " " + token  # still inside the label's first run
            elif label not in labels:
                labels[label] = token
            else:
                label = None  # a later, repeated run: ignored, and it ends any open run
            previous = label
        return labels, "Street Address", True


# --- standardisation --------------------------------------------------------------------------

# House numbers written as words ("ONE S DEARBORN ST"), rewritten as digits.
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN FIFTEEN "
    "SIXTEEN SEVENTEEN EIGHTEEN NINETEEN".split())}
_NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate(
    "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()) if i > 1})
# A valid primary number holds digits: digits first (123, 123A, 123-45, 8938-40), or one or two
# letters then digits (A1075, and Wisconsin grid numbers N79W5406; "W156 N9762" loses its space).
# Or it is lettered (Pub 28 Appendix E codes alphabetic primary numbers and ranges of them): one
# letter (B), or single letters joined by hyphens (G-J). A lone letter that opens a numberless line
# more often begins its street: N, S, E, W (a pre-directional), D, L, O (D'ANGELO, L'ENFANT,
# O'NEILL written apart), I (I 95) and U (U S HWY 1); those are no number. Nor is a word (MAIN, ST).
_HOUSE_NUMBER = re.compile(r"^(\d|[A-Z]{1,2}\d[0-9A-Z-]*$|[A-Z](-[A-Z])+$|[ABCFGHJKMPQRTVXYZ]$)")


def is_house_number(number: str) -> bool:
    return number[:1].isdigit() or bool(_HOUSE_NUMBER.match(number))


def standardize_house_number(number: str, suffix: str = "") -> str:
    if not suffix and number and number.isdigit() and number[0] != "0":
        return number  # the common case, already standard
    number = " ".join((number or "").upper().split())
    number = _NUMBER_WORDS.get(number, number).replace(" ", "").rstrip("-")
    suffix = " ".join((suffix or "").upper().split()).strip("-")
    if number[:1] == "0":
        stripped = number.lstrip("0")
        number = stripped if stripped[:1].isdigit() else ("0" + stripped if stripped else "0")
    if suffix:
        number = f"{number} {suffix}" if _FRACTION.match(suffix) else f"{number}{suffix}"
    return number


def _prefixed_number(labels: dict[str, str]) -> str:
    """The complete address number (FGDC: Address Number Prefix + Address Number + Suffix), so
    ``MILE K`` stays MILEK; a number sign before the number (``# 12``) is no part of it."""
    prefix = labels["AddressNumberPrefix"].replace("#", " ").strip()
    return standardize_house_number(_line(prefix, labels["AddressNumber"]), labels.get("AddressNumberSuffix", ""))


def _line(*parts: str) -> str:
    return " ".join(filter(None, parts))


def standardize_tagged(labels: dict[str, str], kind: str, ambiguous: bool,
                       nc_unit_type: str = "", nc_unit: str = "") -> tuple:
    """One result tuple (FIELDS order) from usaddress-style labels."""
    if "USPSBoxType" in labels:
        labels = repairs.box_without_number(labels)
    get = labels.get
    if get("USPSBoxType") or get("USPSBoxGroupType"):
        if get("AddressNumber") and get("StreetName"):
            pass  # a street address that also carries a box: treat as a street address
        else:
            box_id = standardize_house_number(get("USPSBoxID", "").replace("#", ""))
            group = " ".join(get("USPSBoxGroupType", "").split())
            if group:
                group_type = _RURAL_GROUPS.get(group, group)
                group_id = standardize_house_number(get("USPSBoxGroupID", "").replace("#", ""))
                name = _line(group_type, group_id)
                return (box_id, "", name, "", "", "", "", _line(name, "BOX", box_id), "rural_route")
            if not box_id:
                return UNPARSEABLE_RESULT
            return (box_id, "", "PO BOX", "", "", "", "", _line("PO BOX", box_id), "po_box")
    if kind not in ("Street Address", "Ambiguous") and not ambiguous:
        return UNPARSEABLE_RESULT
    labels = repairs.repair_readings(labels)
    get = labels.get
    number = standardize_house_number(get("AddressNumber", ""), get("AddressNumberSuffix", ""))
    valid_number = is_house_number(number)  # the number proper, before any prefix joins it
    if "AddressNumberPrefix" in labels and valid_number:
        number = _prefixed_number(labels)
    # A post-modifier ("AVON ST EXT", "HIGHWAY A1A ALT") stays with the name, as TIGER keeps it.
    name = _line(get("StreetNamePreModifier", ""), get("StreetNamePreType", ""), get("StreetName", ""),
                 get("StreetNamePostModifier", ""))
    pre, street, stype, post = pub28.standardize_street_parts(
        get("StreetNamePreDirectional", ""), name, get("StreetNamePostType", ""),
        get("StreetNamePostDirectional", ""))
    if not valid_number or not street:
        return UNPARSEABLE_RESULT
    unit_type, unit_number = _units(labels, nc_unit_type, nc_unit)
    line = _line(number, pre, street, stype, post, unit_type, unit_number)
    return (number, pre, street, stype, post, unit_type, unit_number, line,
            "ambiguous" if ambiguous else "ok")


def _units(labels: dict[str, str], nc_unit_type: str, nc_unit: str) -> tuple[str, str]:
    """(unit_type, unit_number). Several levels keep the order written: the first level's
    designator, then its id and each later level as designator + id ('#' left out):
    ``BLDG 2 APT 4`` -> (BLDG, '2 APT 4'); ``STE 200 # B`` -> (STE, '200 B')."""
    get = labels.get
    occ_type, occ_id = get("OccupancyType", ""), get("OccupancyIdentifier", "")
    place = get("PlaceName", "")
    if not (occ_type or occ_id or place or "SubaddressType" in labels or "SubaddressIdentifier" in labels):
        # No unit tagged (most lines): at most NC's trailing '#' unit.
        return pub28.standardize_unit(nc_unit_type, nc_unit) if nc_unit else ("", "")
    if not (occ_type or occ_id) and place.split(" ", 1)[0] in pub28.SECONDARY_UNITS:
        # No city is ever in the line, so a trailing "PlaceName" is a unit usaddress misread
        # ("123 MAIN ST BSMT"); any other place name is dropped.
        occ_type, _, occ_id = place.partition(" ")
    sub_type, sub_id = get("SubaddressType", ""), get("SubaddressIdentifier", "")
    several_words = " " in occ_type.strip() or " " in sub_type.strip()
    if not (sub_type or sub_id or several_words):  # the common single level, without a list
        if occ_type or occ_id:
            unit_type, unit_number = pub28.standardize_unit(occ_type, occ_id)
            if not nc_unit:
                return unit_type, unit_number
        elif not nc_unit:
            return "", ""
    levels = []
    if several_words:
        # Designator words in a row ("2ND FLOOR CONFERENCE ROOM"): a level per word, as written.
        pairs = [(k, word) for k in labels if k.startswith(("Occupancy", "Subaddress"))
                 for word in labels[k].split()]
        levels = [pub28.standardize_unit(d, i) for d, i in unit_levels(pairs)]
    else:
        if occ_type or occ_id:
            levels.append(pub28.standardize_unit(occ_type, occ_id))
        if sub_type or sub_id:
            sub = pub28.standardize_unit(sub_type, sub_id)
            first = next(k for k in labels if k.startswith(("Occupancy", "Subaddress")))
            levels.insert(0 if first.startswith("Subaddress") else len(levels), sub)
    if nc_unit:
        levels.append(pub28.standardize_unit(nc_unit_type, nc_unit))
    if not levels:
        return "", ""
    unit_type, unit_number = levels[0]
    for designator, ident in levels[1:]:
        unit_number = _line(unit_number, designator if designator != "#" else "", ident)
    return unit_type, unit_number


def normalise_line(raw: str | None, fast: bool = True) -> tuple:
    """Parse and standardise one one-line address; `fast=False` forces usaddress (for tests)."""
    text, nc_unit_type, nc_unit = preprocess_line(raw)
    if text in MISSING_MARKERS and not nc_unit:
        return MISSING_RESULT
    labels = tag_fast(text) if fast else None
    if labels is not None:
        return standardize_tagged(labels, "Street Address", False, nc_unit_type, nc_unit)
    labels, kind, ambiguous = tag_full(text)
    return standardize_tagged(labels, kind, ambiguous, nc_unit_type, nc_unit)


def normalise_pieces(house_number: str | None, house_number_suffix: str | None, pre_dir: str | None,
                     street_name: str | None, street_type: str | None, post_dir: str | None,
                     unit: str | None) -> tuple:
    """Standardise an address delivered in pieces (no tagging)."""
    number_raw = " ".join((house_number or "").upper().split())
    name_raw = " ".join((street_name or "").upper().split())
    if not number_raw and not name_raw:
        return MISSING_RESULT
    if name_raw in MISSING_MARKERS and not number_raw:
        return MISSING_RESULT
    suffix = " ".join((house_number_suffix or "").upper().split())
    number = standardize_house_number(number_raw, suffix)
    pre, street, stype, post = pub28.standardize_street_parts(pre_dir or "", street_name or "",
                                                              street_type or "", post_dir or "")
    unit_text = pub28.clean_text(unit)
    if unit_text.startswith("#"):
        unit_type, unit_number = pub28.standardize_unit("#", unit_text[1:])
    else:
        words = unit_text.split(" ", 1)
        if words[0] in pub28.SECONDARY_UNITS:
            unit_type, unit_number = pub28.standardize_unit(words[0], words[1] if len(words) > 1 else "")
        else:
            unit_type, unit_number = pub28.standardize_unit("", unit_text)
    if not is_house_number(number) or not street:
        return UNPARSEABLE_RESULT
    line = _line(number, pre, street, stype, post, unit_type, unit_number)
    return (number, pre, street, stype, post, unit_type, unit_number, line, "ok")
