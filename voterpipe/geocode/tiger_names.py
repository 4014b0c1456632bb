"""Street-name keys shared by the TIGER range table and the addresses matched against it.

Both sides first go through the address normaliser's standardize_street_parts(); the match keys
are then built from the joined tokens, so "N ST" matches whether a parser split it as
(pre_dir N, name ST) or (name N, type ST), and "HIGHWAY 54" matches "HWY 54".
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import pandas as pd

from voterpipe.addresses.pub28 import standardize_street_parts

DIRECTIONS = {
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE", "NORTHWEST": "NW",
    "SOUTHEAST": "SE", "SOUTHWEST": "SW", "NO": "N", "SO": "S",
}

# Token canonicalisation for keys only (never shown): the common USPS Pub 28 Appendix C1 suffixes
# and route words. It is idempotent, so tokens already abbreviated by the normaliser pass through.
_TOKEN_CANON = {
    "ALLEY": "ALY", "ALLY": "ALY", "ANNEX": "ANX", "ARCADE": "ARC", "AVENUE": "AVE", "AV": "AVE",
    "AVEN": "AVE", "AVENU": "AVE", "AVN": "AVE", "AVNUE": "AVE", "BAYOU": "BYU", "BEACH": "BCH",
    "BEND": "BND", "BLUFF": "BLF", "BOULEVARD": "BLVD", "BOUL": "BLVD", "BOULV": "BLVD",
    "BRANCH": "BR", "BRIDGE": "BRG", "BROOK": "BRK", "BYPASS": "BYP", "CAUSEWAY": "CSWY",
    "CENTER": "CTR", "CENTRE": "CTR", "CIRCLE": "CIR", "CIRC": "CIR", "CLIFF": "CLF",
    "CLUB": "CLB", "COMMON": "CMN", "CORNER": "COR", "COURSE": "CRSE", "COURT": "CT",
    "COVE": "CV", "CREEK": "CRK", "CRESCENT": "CRES", "CROSSING": "XING", "DRIVE": "DR",
    "DRIV": "DR", "DRV": "DR", "ESTATE": "EST", "ESTATES": "ESTS", "EXPRESSWAY": "EXPY",
    "EXTENSION": "EXT", "FIELD": "FLD", "FIELDS": "FLDS", "FOREST": "FRST", "FORK": "FRK",
    "FREEWAY": "FWY", "GARDEN": "GDN", "GARDENS": "GDNS", "GATEWAY": "GTWY", "GLEN": "GLN",
    "GREEN": "GRN", "GROVE": "GRV", "HARBOR": "HBR", "HEIGHTS": "HTS", "HIGHWAY": "HWY",
    "HIGHWY": "HWY", "HIWAY": "HWY", "HIWY": "HWY", "HWAY": "HWY", "HILL": "HL", "HILLS": "HLS",
    "HOLLOW": "HOLW", "ISLAND": "IS", "JUNCTION": "JCT", "KNOLL": "KNL", "LAKE": "LK",
    "LAKES": "LKS", "LANDING": "LNDG", "LANE": "LN", "LOOP": "LOOP", "MANOR": "MNR",
    "MEADOW": "MDW", "MEADOWS": "MDWS", "MILL": "ML", "MOUNT": "MT", "MOUNTAIN": "MTN",
    "ORCHARD": "ORCH", "PARKWAY": "PKWY", "PARKWY": "PKWY", "PKY": "PKWY", "PASSAGE": "PSGE",
    "PIKE": "PIKE", "PINES": "PNES", "PLACE": "PL", "PLAIN": "PLN", "PLAZA": "PLZ",
    "POINT": "PT", "POINTE": "PT", "PORT": "PRT", "PRAIRIE": "PR", "RANCH": "RNCH",
    "RIDGE": "RDG", "RIVER": "RIV", "ROAD": "RD", "ROUTE": "RTE", "RT": "RTE", "RUN": "RUN",
    "SHORE": "SHR", "SHORES": "SHRS", "SPRING": "SPG", "SPRINGS": "SPGS", "SQUARE": "SQ",
    "STATION": "STA", "STREET": "ST", "STR": "ST", "STRT": "ST", "SUMMIT": "SMT",
    "TERRACE": "TER", "TERR": "TER", "TRACE": "TRCE", "TRAIL": "TRL", "TRAILS": "TRL",
    "TURNPIKE": "TPKE", "TUNNEL": "TUNL", "VALLEY": "VLY", "VIEW": "VW", "VILLAGE": "VLG",
    "VISTA": "VIS", "WALK": "WALK", "WAY": "WAY", "WELLS": "WLS", "SAINT": "ST",
    "FIRST": "1ST", "SECOND": "2ND", "THIRD": "3RD", "FOURTH": "4TH", "FIFTH": "5TH",
    "SIXTH": "6TH", "SEVENTH": "7TH", "EIGHTH": "8TH", "NINTH": "9TH", "TENTH": "10TH",
    "I-": "I", "INTERSTATE": "I", "STATE": "STATE", "COUNTY": "CO", "CNTY": "CO",
    **DIRECTIONS,
}
_PUNCT = re.compile(r"[.,#'\"]")
_SPACES = re.compile(r"\s+")


def standardize_parts(pre_dir, street_name, street_type, post_dir) -> tuple[str, str, str, str]:
    """The address normaliser's standardize_street_parts, applied to TIGER and input parts alike."""
    result = standardize_street_parts(pre_dir or "", street_name or "", street_type or "", post_dir or "")
    return tuple("" if part is None else str(part).strip().upper() for part in result)[:4]


def canonical_key(*parts: str) -> str:
    """Join parts, split into tokens, canonicalise each token: a key, not a display name."""
    text = _SPACES.sub(" ", _PUNCT.sub(" ", " ".join(p for p in parts if p).upper())).strip()
    return " ".join(_TOKEN_CANON.get(token, token) for token in text.split(" ") if token)


@lru_cache(maxsize=65536)
def _part_key(part: str) -> str:
    """canonical_key of one part; keys of joined parts are the join of the parts' keys."""
    return canonical_key(part)


def _joined(*keys: str) -> str:
    return " ".join(k for k in keys if k)


def parse_fullname(fullname: str) -> tuple[str, str, str, str]:
    """Split a TIGER FULLNAME ("N Main St", "US Hwy 1 N") into (pre_dir, name, type, post_dir).

    Uses the address normaliser's one-line parser on "1 <FULLNAME>", so TIGER names are tagged
    exactly like voter addresses; names it cannot parse fall back to plain usaddress tags.
    """
    text = _SPACES.sub(" ", str(fullname or "")).strip()
    if not text:
        return "", "", "", ""
    from voterpipe.addresses.parse import normalise_line

    result = normalise_line("1 " + text)
    if result[-1] in ("ok", "ambiguous") and result[2]:
        return result[1], result[2], result[3], result[4]
    import usaddress
    try:
        tagged, _ = usaddress.tag("1 " + text)
    except usaddress.RepeatedLabelError:
        return "", text.upper(), "", ""
    pre = tagged.get("StreetNamePreDirectional", "")
    post = tagged.get("StreetNamePostDirectional", "")
    stype = tagged.get("StreetNamePostType", "")
    name = " ".join(tagged[label] for label in (
        "StreetNamePreModifier", "StreetNamePreType", "StreetName", "StreetNamePostModifier")
        if tagged.get(label))
    if not name:  # e.g. "N St" tagged as direction + type: the type word is the name
        name, stype = stype or pre or post, "" if stype else stype
        if name == pre:
            pre = ""
        elif name == post:
            post = ""
    return pre, name, stype, post


def street_keys(parts: pd.DataFrame) -> pd.DataFrame:
    """For columns pre_dir, street_name, street_type, post_dir: standardised parts and match keys.

    Adds std_pre_dir, std_street_name, std_street_type, std_post_dir, std_fullname, key_full
    (all tokens), key_nodir (name + type) and key_base (name). Works on the distinct streets only.
    """
    cols = ["pre_dir", "street_name", "street_type", "post_dir"]
    frame = parts[cols].astype(object).where(parts[cols].notna(), "").astype(str)
    combined = frame[cols[0]].str.cat([frame[c] for c in cols[1:]], sep="\x1f")
    codes, uniques = pd.factorize(combined)
    rows = [_street_row(*text.split("\x1f")) for text in uniques]
    names = ["std_pre_dir", "std_street_name", "std_street_type", "std_post_dir", "std_fullname",
             "key_full", "key_nodir", "key_base"]
    table = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame(columns=names)
    if len(codes) == 0:
        return pd.DataFrame({n: pd.Series([], dtype=object) for n in names}, index=parts.index)
    taken = table.iloc[codes]
    taken.index = parts.index
    return taken


def _street_row(pre_dir: str, street_name: str, street_type: str, post_dir: str) -> tuple:
    """street_keys' columns for one street."""
    pre, name, stype, post = standardize_parts(pre_dir, street_name, street_type, post_dir)
    full = " ".join(p for p in (pre, name, stype, post) if p)
    pre_key, name_key, type_key, post_key = _part_key(pre), _part_key(name), _part_key(stype), _part_key(post)
    return (pre, name, stype, post, full, _joined(pre_key, name_key, type_key, post_key),
            _joined(name_key, type_key), name_key)


def match_keys(streets: list[str], sep: str) -> np.ndarray:
    """(key_full, key_nodir, key_base) per street given as "pre_dir<sep>name<sep>type<sep>post_dir":
    street_keys' match keys without a DataFrame (the geocoder's batches)."""
    keys = np.empty((len(streets), 3), dtype=object)
    for n, street in enumerate(streets):
        keys[n] = _street_row(*street.split(sep))[5:]
    return keys


KEY_COLUMNS = ["std_fullname", "key_full", "key_nodir", "key_base"]


def street_rules_version() -> str:
    """The address normaliser's rules version (keys built under other rules must be rebuilt)."""
    from voterpipe.addresses.parse import RULES_VERSION

    return str(RULES_VERSION)


def fullname_keys(fullnames: pd.Series) -> pd.DataFrame:
    """KEY_COLUMNS for TIGER FULLNAME values, parsing each distinct name once."""
    codes, uniques = pd.factorize(fullnames.astype(object).where(fullnames.notna(), "").astype(str))
    parsed = pd.DataFrame([parse_fullname(n) for n in uniques],
                          columns=["pre_dir", "street_name", "street_type", "post_dir"])
    keys = street_keys(parsed)[KEY_COLUMNS] if len(parsed) else pd.DataFrame(columns=KEY_COLUMNS)
    taken = keys.iloc[codes] if len(codes) else pd.DataFrame(columns=KEY_COLUMNS)
    taken.index = fullnames.index
    return taken


_SPELLINGS: dict[str, list[str]] = {}
for _spelling, _canon in _TOKEN_CANON.items():
    if _spelling != _canon and _spelling.isalpha() and len(_spelling) > len(_canon):
        _SPELLINGS.setdefault(_canon, []).append(_spelling)


def key_spellings(key: str, limit: int = 8) -> list[str]:
    """`key` and the ways it may have been written before canonicalisation ("ML" -> "MILL"), so a
    misspelling can be compared with the words a person typed. At most `limit` variants."""
    variants = [""]
    for token in key.split(" "):
        options = [token, *_SPELLINGS.get(token, ())]
        variants = [f"{v} {o}".strip() for v in variants for o in options][:limit]
    return variants
