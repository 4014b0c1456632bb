"""Vectorised normalisation of raw text columns onto canonical fields: dates, ZIPs, years, codes,
phones, the per-voter extra map.

Every function takes and returns Arrow arrays (no per-row Python), and reports the values it
turned into nulls by reason (and, with formats/repair.py, the values it repaired by kind), so the
importer can count them per column.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.formats.layouts import Canonical, CodeTable, FileSpec
from voterpipe.formats.repair import CODE_REPAIRS, ZIP_REPAIRS, Counts, canonical_codes, parse_phone, repair_zip

EARLIEST_DATE = date(1850, 1, 1)
EARLIEST_BIRTH_YEAR = 1880
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_NULL_STRING = pa.scalar(None, pa.string())

_DIRECTIVES = {
    "%Y": r"(?P<Y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})",
    "%H": r"\d{1,2}", "%M": r"\d{2}", "%S": r"\d{2}(?:\.\d+)?", "%%": "%",
}


NullCounts = Counts  # values set to null, by canonical column and reason


def clean_text(values: pa.Array) -> pa.Array:
    """Trimmed strings; empty strings become null."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), _NULL_STRING, trimmed)


def join_present(parts: list[pa.Array], sep: str) -> pa.Array:
    """Join the non-null parts with `sep`; null when every part is null.

    (pyarrow 26's binary_join_element_wise with null_handling="skip" drops rows.)
    """
    result = parts[0]
    for part in parts[1:]:
        both = pc.binary_join_element_wise(result, part, sep)
        result = pc.if_else(result.is_null(), part, pc.if_else(part.is_null(), result, both))
    return result


def _count(mask) -> int:
    return int(pc.sum(mask).as_py() or 0)


@lru_cache(maxsize=64)
def date_pattern(fmt: str) -> str:
    """A strptime-style format as an anchored regex with named groups Y, m, d."""
    parts, i = [], 0
    while i < len(fmt):
        token = fmt[i: i + 2]
        if token in _DIRECTIVES:
            parts.append(_DIRECTIVES[token])
            i += 2
        elif fmt[i] == "%":
            raise ValueError(f"unsupported date directive {token!r} in {fmt!r}")
        else:
            parts.append(re.escape(fmt[i]))
            i += 1
    pattern = "^" + "".join(parts) + "$"
    if not {"Y", "m", "d"} <= set(re.compile(pattern).groupindex):
        raise ValueError(f"date format {fmt!r} needs %Y, %m and %d")
    return pattern


def _ints(struct: pa.Array, name: str) -> np.ndarray:
    return pc.fill_null(pc.cast(pc.struct_field(struct, name), pa.int32()), 0).to_numpy(zero_copy_only=False)


DISTINCT_FIRST_ROWS = 4096


def _by_distinct(inner, values: pa.Array, *args) -> tuple:
    """(result, *counts) of `inner`, which returns (result, [bool flags per value, one per count]).

    Dates, ZIPs and years repeat a lot: above a few thousand rows `inner` runs once per distinct
    value and the result is spread back by index, a fraction of the regex work.
    """
    if len(values) <= DISTINCT_FIRST_ROWS:
        result, flags = inner(values, *args)
        return (result, *(int(f.sum()) for f in flags))
    encoded = pc.dictionary_encode(values)
    dictionary = encoded.dictionary
    result, flags = inner(dictionary, *args)
    indices = encoded.indices
    frequency = np.bincount(pc.fill_null(indices, 0).to_numpy(zero_copy_only=False), minlength=len(dictionary))
    frequency[0] -= indices.null_count if len(dictionary) else 0
    return (pc.take(result, indices), *(int(frequency[f].sum()) for f in flags))


def parse_dates(values: pa.Array, formats: list[str], latest: date, earliest: date = EARLIEST_DATE
                ) -> tuple[pa.Array, int, int]:
    """(date32 array, impossible or unparseable count, out-of-range count). Input nulls stay null.

    Components are checked (2023-02-30 is impossible, not 2023-03-02), unlike Arrow's strptime.
    """
    return _by_distinct(_parse_dates, values, formats, latest, earliest)


def _parse_dates(values: pa.Array, formats: list[str], latest: date, earliest: date):
    n = len(values)
    days = np.zeros(n, dtype=np.int32)
    found = np.zeros(n, dtype=bool)
    present = values.is_valid().to_numpy(zero_copy_only=False)
    for fmt in formats:
        todo = present & ~found
        if not todo.any():
            break
        parts = pc.extract_regex(values, date_pattern(fmt))
        matched = parts.is_valid().to_numpy(zero_copy_only=False) & todo
        if not matched.any():
            continue
        year, month, day = _ints(parts, "Y"), _ints(parts, "m"), _ints(parts, "d")
        month_ok = (month >= 1) & (month <= 12)
        month_index = (year.astype(np.int64) - 1970) * 12 + np.where(month_ok, month - 1, 0)
        start = month_index.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        next_start = (month_index + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        valid = matched & month_ok & (day >= 1) & (day <= next_start - start)
        days = np.where(valid, (start + day - 1).astype(np.int32), days)
        found |= valid
    low, high = earliest.toordinal() - _EPOCH_ORDINAL, latest.toordinal() - _EPOCH_ORDINAL
    in_range = (days >= low) & (days <= high)
    keep = found & in_range
    result = pa.array(days, type=pa.int32(), mask=~keep).cast(pa.date32())
    return result, [present & ~found, found & ~in_range]


def parse_year(values: pa.Array, latest_year: int, earliest_year: int = EARLIEST_BIRTH_YEAR
               ) -> tuple[pa.Array, int, int]:
    """(int16 array, non-year count, out-of-range count)."""
    return _by_distinct(_parse_year, values, latest_year, earliest_year)


def _parse_year(values: pa.Array, latest_year: int, earliest_year: int):
    is_year = pc.fill_null(pc.match_substring_regex(values, r"^\d{4}$"), False)
    bad = pc.and_(values.is_valid(), pc.invert(is_year))
    years = pc.cast(pc.if_else(is_year, values, _NULL_STRING), pa.int32())
    in_range = pc.fill_null(pc.and_(pc.greater_equal(years, earliest_year), pc.less_equal(years, latest_year)), False)
    out_of_range = pc.and_(years.is_valid(), pc.invert(in_range))
    result = pc.cast(pc.if_else(in_range, years, pa.scalar(None, pa.int32())), pa.int16())
    return result, [_flags(bad), _flags(out_of_range)]


def _flags(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def parse_zip(values: pa.Array, part: str, leading_zero: bool = False, shared: bool = True) -> tuple:
    """(ZIP5 or ZIP+4 from 5 or 9 digits, bad count, then repair counts in ZIP_REPAIRS order).

    Dash optional; a lone 4-digit value is a ZIP+4 when the column is not also the ZIP5 (`shared`);
    floats, lost leading zeros (states whose ZIPs begin with 0), `27517-` and `-0000` are repaired.
    """
    if part not in ("zip5", "zip4"):
        raise ValueError(f"zip part must be zip5 or zip4, got {part!r}")
    return _by_distinct(repair_zip, values, part, leading_zero, shared)


def map_codes(values: pa.Array, table: CodeTable) -> tuple[pa.Array, int]:
    """Normalised values for raw codes (case-insensitive); (array, count of unknown codes)."""
    if len(values) > 4096:
        # Codes repeat: map each distinct value once, then spread the result by index.
        encoded = pc.dictionary_encode(values, null_encoding="encode")
        mapped, _ = map_codes(encoded.dictionary, table)
        result = pc.take(mapped, encoded.indices)
        known = pc.take(_known_codes(encoded.dictionary, table), encoded.indices)
        return result, _count(pc.and_(values.is_valid(), pc.invert(known)))
    return _map_codes_small(values, table)


def _known_codes(values: pa.Array, table: CodeTable) -> pa.Array:
    upper = pc.utf8_upper(values)
    known = pc.fill_null(pc.is_in(upper, value_set=pa.array(list(table.exact), pa.string())), False)
    for text, _ in table.contains:
        known = pc.or_(known, pc.fill_null(pc.match_substring(upper, text), False))
    return known


def _map_codes_small(values: pa.Array, table: CodeTable) -> tuple[pa.Array, int]:
    upper = pc.utf8_upper(values)
    result = pa.nulls(len(values), pa.string())
    matched = pa.array(np.zeros(len(values), dtype=bool))
    if table.exact:
        keys = pa.array(list(table.exact), pa.string())
        mapped = pa.array(list(table.exact.values()), pa.string())
        index = pc.index_in(upper, value_set=keys)
        result = pc.take(mapped, index)
        matched = index.is_valid()
    for text, value in reversed(table.contains):
        hit = pc.fill_null(pc.and_(pc.invert(matched), pc.match_substring(upper, text)), False)
        result = pc.if_else(hit, pa.scalar(value, pa.string()), result)
    for text, _ in table.contains:
        matched = pc.or_(matched, pc.fill_null(pc.match_substring(upper, text), False))
    unknown = pc.and_(values.is_valid(), pc.invert(matched))
    n_unknown = _count(unknown)
    if table.default is not None and n_unknown:
        result = pc.if_else(unknown, pa.scalar(table.default, pa.string()), result)
    if table.empty is not None:
        result = pc.if_else(values.is_valid(), result, pa.scalar(table.empty, pa.string()))
    return result, n_unknown


class AuxTable:
    """A small lookup table (e.g. MI election codes) keyed by one column."""

    def __init__(self, keys: pa.Array, columns: dict[str, pa.Array]):
        self.keys = keys
        self.columns = columns

    def lookup(self, keys: pa.Array, column: str) -> tuple[pa.Array, int]:
        index = pc.index_in(keys, value_set=self.keys)
        missing = _count(pc.and_(keys.is_valid(), pc.invert(index.is_valid())))
        return pc.take(self.columns[column], index), missing


def build_fields(
    raw: dict[str, pa.Array], spec: FileSpec, codes: dict[str, CodeTable], aux: dict[str, AuxTable],
    snapshot: date, target: pa.Schema, nulled: Counts, canonical: Canonical | None = None,
    repaired: Counts | None = None,
) -> dict[str, pa.Array]:
    """Canonical columns for one chunk, from its raw columns, per the layout's field specs.

    `canonical` gives the state's code forms and ZIP rule; values it repairs are counted in `repaired`.
    """
    n = len(next(iter(raw.values()))) if raw else 0
    canonical = canonical or Canonical()
    repaired = repaired if repaired is not None else Counts()
    zip5_columns = {f.get("column") for f in spec.fields.values() if f.get("zip") == "zip5"}
    cleaned: dict[str, pa.Array] = {}

    def text(column: str) -> pa.Array:
        if column not in cleaned:
            cleaned[column] = clean_text(raw[column]) if column in raw else pa.nulls(n, pa.string())
        return cleaned[column]

    out: dict[str, pa.Array] = {}
    for name, field_spec in spec.fields.items():
        form = canonical.code_forms.get(name)

        def part(column: str) -> pa.Array:
            if form is None:
                return text(column)
            values, floats, padded = _by_distinct(canonical_codes, text(column), form)
            repaired.add(name, CODE_REPAIRS[0], floats)
            repaired.add(name, CODE_REPAIRS[1], padded)
            return values

        if "column" in field_spec and "lookup" not in field_spec:
            values = part(field_spec["column"])
        elif "join" in field_spec or "concat" in field_spec:
            parts = [part(c) for c in field_spec.get("join") or field_spec["concat"]]
            sep = field_spec.get("sep", " ")
            values = join_present(parts, sep) if "join" in field_spec else pc.binary_join_element_wise(*parts, sep)
        elif "value" in field_spec:
            values = pa.array([str(field_spec["value"])] * n, pa.string())
        else:  # lookup
            values, missing = aux[field_spec["lookup"]].lookup(text(field_spec["key"]), field_spec["column"])
            values = clean_text(values)
            nulled.add(name, "unknown_lookup_key", missing)
        values = _transform(name, field_spec, values, spec, codes, snapshot, target, nulled, repaired, out,
                            leading_zero=canonical.zip_leading_zero,
                            shared_zip=field_spec.get("column") in zip5_columns)
        out[name] = values
    return out


def _transform(name: str, field_spec: dict, values: pa.Array, spec: FileSpec, codes: dict[str, CodeTable],
               snapshot: date, target: pa.Schema, nulled: Counts, repaired: Counts, out: dict,
               leading_zero: bool, shared_zip: bool) -> pa.Array:
    """One field's placeholders, extract, case, then its parse (codes, date, ZIP, year, phone)."""
    placeholders = list(spec.placeholders) + list(field_spec.get("placeholders", []))
    if placeholders:
        hit = pc.fill_null(pc.is_in(values, value_set=pa.array(placeholders, pa.string())), False)
        nulled.add(name, "placeholder", _count(hit))
        values = pc.if_else(hit, _NULL_STRING, values)
    if "extract" in field_spec:
        found = pc.struct_field(pc.extract_regex(values, _one_group(field_spec["extract"])), 0)
        values = clean_text(pc.coalesce(found, values))
    if field_spec.get("upper"):
        values = pc.utf8_upper(values)

    if "codes" in field_spec:
        if f"{name}_raw" in target.names and f"{name}_raw" not in spec.fields:
            out[f"{name}_raw"] = values
        values, _ = map_codes(values, codes[field_spec["codes"]])
    elif "date" in field_spec:
        values, bad, out_of_range = parse_dates(values, field_spec["date"], latest=snapshot)
        nulled.add(name, "bad_date", bad)
        nulled.add(name, "date_out_of_range", out_of_range)
    elif "zip" in field_spec:
        values, bad, *repairs = parse_zip(values, field_spec["zip"], leading_zero, shared_zip)
        nulled.add(name, "bad_zip", bad)
        for kind, count in zip(ZIP_REPAIRS, repairs):
            repaired.add(name, kind, count)
    elif field_spec.get("year"):
        values, bad, out_of_range = parse_year(values, latest_year=snapshot.year)
        nulled.add(name, "bad_year", bad)
        nulled.add(name, "year_out_of_range", out_of_range)
    elif field_spec.get("phone"):
        values, bad, dummy = _by_distinct(parse_phone, values)
        nulled.add(name, "bad_phone", bad)
        nulled.add(name, "dummy_phone", dummy)  # 0000000 meant "no phone" (quality: harmless)
    if "default" in field_spec:
        values = pc.fill_null(values, pa.scalar(field_spec["default"], values.type))
    return values


def build_extra(raw: dict[str, pa.Array], columns: tuple[str, ...], n: int) -> pa.Array:
    """The per-voter map of the delivered columns no canonical field holds (name -> trimmed value),
    blank values left out; built column-wise (one take over all values), no per-row Python."""
    present = [c for c in columns if c in raw]
    if not present or n == 0:
        return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()),
                                       pa.array([], pa.string()))
    values = [pc.utf8_trim_whitespace(raw[c]) for c in present]
    valid = np.stack([_non_empty(v) for v in values], axis=1)  # n x k: non-blank values
    rows, cols = np.nonzero(valid)  # row-major: each row's keys in layout order
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    everything = pa.concat_arrays([v.cast(pa.string()) for v in values])
    items = everything.take(pa.array(cols.astype(np.int64) * n + rows))
    keys = pa.array(present, pa.string()).take(pa.array(cols))
    return pa.MapArray.from_arrays(pa.array(offsets), keys, items)


def _non_empty(values: pa.Array) -> np.ndarray:
    """Which strings are present and not empty, read from the offsets (no pass over the text)."""
    if values.type != pa.string():
        return pc.fill_null(pc.greater(pc.utf8_length(values), 0), False).to_numpy(zero_copy_only=False)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset: values.offset + len(values) + 1]
    present = np.diff(offsets) > 0
    return present & values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else present


def _one_group(pattern: str) -> str:
    """extract_regex needs named groups; name the first plain group."""
    return pattern if "(?P<" in pattern else pattern.replace("(", "(?P<value>", 1)
