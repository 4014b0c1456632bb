"""Repair, don't null: values a spreadsheet or a database export mangled but that can be recovered
exactly (ZIPs and codes written as floats, lost leading zeros, empty +4s, padded codes), one canonical
form per state for county, precinct and district codes, and phone numbers as ten digits.

Every function takes and returns Arrow arrays (no per-row Python) and reports what it changed by
kind, so the importer counts repairs per column beside the values it nulled.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NULL_STRING = pa.scalar(None, pa.string())
_FLOAT_NUMBER = r"^\d+\.0*$"  # 27517.0, 6.0, 27517. (a spreadsheet's float of a whole number)
CODE_FORMS = ("unpadded", "as_delivered")  # or {pad = N}; every form drops a whole number's ".0"
CODE_FIELDS = ("county_code", "precinct", "congressional_district", "state_senate_district",
               "state_house_district")


class Counts:
    """Values changed (repaired, or nulled), by canonical column and kind."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = defaultdict(Counter)

    def add(self, column: str, kind: str, n: int) -> None:
        if n:
            self.counts[column][kind] += int(n)

    def merge(self, other: "Counts") -> None:
        for column, kinds in other.counts.items():
            self.counts[column].update(kinds)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {column: dict(sorted(kinds.items())) for column, kinds in sorted(self.counts.items()) if kinds}


@dataclass(frozen=True)
class CodeForm:
    """The canonical form of one code column of a state: digits unpadded, padded to `pad`, or as delivered."""

    name: str  # unpadded / pad / as_delivered
    pad: int = 0

    @classmethod
    def parse(cls, value) -> "CodeForm":
        if isinstance(value, dict) and set(value) == {"pad"} and int(value["pad"]) > 0:
            return cls("pad", int(value["pad"]))
        if value in CODE_FORMS:
            return cls(value)
        raise ValueError(f"code form must be one of {CODE_FORMS} or {{pad = N}}, got {value!r}")

    def describe(self) -> str:
        return f"pad {self.pad}" if self.name == "pad" else self.name


def _flags(mask) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _matches(values: pa.Array, pattern: str) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(values, pattern), False)


def drop_float_suffix(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(values with '.0' dropped from whole numbers, which values had it)."""
    is_float = _matches(values, _FLOAT_NUMBER)
    return pc.if_else(is_float, pc.replace_substring_regex(values, r"\.0*$", ""), values), is_float


def repair_zip(values: pa.Array, part: str, leading_zero: bool, shared: bool):
    """(ZIP5 or ZIP+4, [bad, float, leading_zero, trailing_dash, empty_plus4] flags per value).

    `leading_zero`: the state's ZIPs begin with 0, so 4 (or 8) digits lost it. `shared`: the column
    also gives the ZIP5, so a lone 4-digit value is no +4. A +4 of 0000 is no +4.
    """
    text, is_float = drop_float_suffix(values)
    trailing_dash = _matches(text, r"^\d{5}-$")
    digits = pc.replace_substring(pc.replace_substring(text, "-", ""), " ", "")
    lone_four = part == "zip4" and not shared
    lost = _matches(digits, r"^\d{8}$" if lone_four else r"^(\d{4}|\d{8})$") if leading_zero else None
    if lost is not None:
        digits = pc.if_else(lost, pc.binary_join_element_wise("0", digits, ""), digits)
    nine, five = _matches(digits, r"^\d{9}$"), _matches(digits, r"^\d{5}$")
    four = _matches(digits, r"^\d{4}$") if lone_four else pa.array(np.zeros(len(values), bool))
    plus4 = pc.if_else(nine, pc.utf8_slice_codeunits(digits, 5, 9), pc.if_else(four, digits, _NULL_STRING))
    empty_plus4 = pc.fill_null(pc.equal(plus4, "0000"), False)
    ok = pc.or_(pc.or_(nine, five), four)
    if part == "zip5":
        result = pc.if_else(pc.or_(nine, five), pc.utf8_slice_codeunits(digits, 0, 5), _NULL_STRING)
    else:
        result = pc.if_else(empty_plus4, _NULL_STRING, plus4)
    counted = part == "zip5" or not shared  # a shared column's float/zero/dash repairs count under zip5
    none = np.zeros(len(values), bool)
    return result, [
        _flags(pc.and_(values.is_valid(), pc.invert(ok))),
        _flags(pc.and_(is_float, ok)) if counted else none,
        _flags(pc.and_(lost, ok)) if (lost is not None and counted) else none,
        _flags(pc.and_(trailing_dash, ok)) if counted else none,
        _flags(empty_plus4) if part == "zip4" else none,
    ]


ZIP_REPAIRS = ("float", "leading_zero", "trailing_dash", "empty_plus4")


def canonical_codes(values: pa.Array, form: CodeForm):
    """(codes in the state's form, [float, zero_padded] flags per value): '6.0' -> '6'; '006' -> '6'
    (unpadded) or '6' -> '006' (pad 3). Non-numeric codes are only trimmed."""
    text, is_float = drop_float_suffix(values)
    if form.name == "as_delivered":
        return text, [_flags(is_float), np.zeros(len(values), bool)]
    digits = _matches(text, r"^\d+$")
    unpadded = pc.replace_substring_regex(text, r"^0+(\d)", r"\1")
    if form.name == "pad":
        unpadded = pc.utf8_lpad(unpadded, form.pad, "0")
    result = pc.if_else(digits, unpadded, text)
    changed = pc.and_(digits, pc.not_equal(result, text))
    return result, [_flags(is_float), _flags(changed)]


CODE_REPAIRS = ("float", "zero_padded")


def canonical_code_array(values: pa.Array, form: CodeForm) -> pa.Array:
    """The codes alone, for tables other than the import (geocoded districts, cohorts)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = pc.utf8_trim_whitespace(values.cast(pa.string()))
    values = pc.if_else(pc.equal(values, ""), _NULL_STRING, values)
    encoded = pc.dictionary_encode(values)
    result, _ = canonical_codes(encoded.dictionary, form)
    return pc.take(result, encoded.indices)


def parse_phone(values: pa.Array):
    """(10-digit phone, [bad, dummy] flags): punctuation and a leading 1 dropped; a number of one
    repeated digit (0000000, 9999999999) or area code 000 is a dummy; other lengths are bad."""
    digits = pc.replace_substring_regex(values, r"\D", "")
    digits = pc.if_else(_matches(digits, r"^1\d{10}$"), pc.utf8_slice_codeunits(digits, 1, 11), digits)
    dummy = pc.or_(_matches(digits, r"^(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$"), _matches(digits, r"^000\d{7}$"))
    ten = pc.and_(_matches(digits, r"^\d{10}$"), pc.invert(dummy))
    present = pc.and_(values.is_valid(), pc.not_equal(digits, ""))
    bad = pc.and_(pc.and_(present, pc.invert(ten)), pc.invert(dummy))
    return pc.if_else(ten, digits, _NULL_STRING), [_flags(pc.and_(present, bad)), _flags(pc.and_(present, dummy))]
