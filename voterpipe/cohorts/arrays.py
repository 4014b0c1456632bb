"""Array helpers the cohort modules share: day numbers, Arrow string columns and id lookups, and
integer codes of cohort columns for numpy bincount."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = np.datetime64("1970-01-01", "D")


def day_numbers(values: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 as float (NaN for missing), from dates or datetimes."""
    stamps = pd.to_datetime(pd.Series(values), errors="coerce")
    days = stamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    out = (days - EPOCH).astype(np.int64).astype(float)
    out[np.isnat(days)] = np.nan
    return out


def day_number(day: date) -> int:
    return int((np.datetime64(day, "D") - EPOCH).astype(np.int64))


def first_names(codes: np.ndarray, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each code's first non-null name (a county's name from its first voter that has one; a
    null first name crashed the turnout table): (codes, names) of the codes that have one."""
    named = np.flatnonzero(pd.notna(names))
    _, first = np.unique(codes[named], return_index=True)
    rows = named[first]
    return codes[rows], names[rows]


def as_arrow_strings(values: pd.Series) -> pa.Array:
    """A pandas column as an Arrow large_string array (None/NaN -> null)."""
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array(pd.Series(values).astype(object).where(pd.Series(values).notna(), None).map(
            lambda v: v if v is None else str(v)), type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    return array


def string_column(frame: pd.DataFrame | pa.Table, name: str) -> pa.Array:
    """frame[name] as Arrow strings; all nulls when the frame has no such column."""
    if isinstance(frame, pa.Table):
        if name not in frame.column_names:
            return pa.nulls(frame.num_rows, pa.large_string())
        return _decoded(frame.column(name).combine_chunks())
    if name not in frame:
        return pa.nulls(len(frame), pa.large_string())
    return as_arrow_strings(frame[name].reset_index(drop=True))


def column_at(frame: pd.DataFrame | pa.Table, name: str, rows: pa.Array) -> pa.Array:
    """string_column(frame, name).take(rows); a dictionary column of an Arrow table is decoded
    after the take, so only the rows taken are expanded to strings."""
    if isinstance(frame, pa.Table) and name in frame.column_names:
        return _decoded(frame.column(name).take(rows).combine_chunks())
    return string_column(frame, name).take(rows)


def _decoded(array: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    return array if array.type == pa.large_string() else array.cast(pa.large_string())


def voter_positions(voter_ids: pd.Series, lookup_ids: pd.Series) -> np.ndarray:
    """Row of each lookup id in voter_ids (first occurrence; -1 when absent or null): an Arrow
    hash join, much faster than pandas indexing on millions of string ids."""
    options = pc.SetLookupOptions(as_arrow_strings(voter_ids), skip_nulls=True)
    found = pc.index_in(as_arrow_strings(lookup_ids), options=options)
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def positions(value_set: pa.Array, lookups: pa.Array) -> pa.Array:
    """index_in with nulls for absent or null lookups (Arrow take() propagates them)."""
    return pc.index_in(lookups, options=pc.SetLookupOptions(value_set, skip_nulls=True))


def label_codes(values: pd.Series, unknown: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (null -> the last code, `unknown`) and sorted labels, via an Arrow dictionary."""
    encoded = as_arrow_strings(pd.Series(values).reset_index(drop=True)).dictionary_encode()
    labels = np.array(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(labels.astype(str), kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    nulls = np.isnan(indices) if indices.dtype.kind == "f" else np.zeros(len(indices), dtype=bool)
    codes = np.where(nulls, len(labels), rank[np.nan_to_num(indices, nan=0).astype(np.int64)] if len(labels) else 0)
    return codes.astype(np.int64), np.array([*labels[order], unknown], dtype=object)


def dimension_codes(frame: pd.DataFrame, dimension: str, unknown: str = "unknown") -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and labels of one cohort column ('all' = one cohort of everyone)."""
    if dimension == "all":
        return np.zeros(len(frame), dtype=np.int64), np.array(["all"], dtype=object)
    column = frame[dimension]
    if isinstance(column.dtype, pd.CategoricalDtype):
        labels = np.array([str(c) for c in column.cat.categories], dtype=object)
        codes = column.cat.codes.to_numpy().astype(np.int64)
        if (codes < 0).any():
            if unknown in labels:
                codes = np.where(codes < 0, int(np.flatnonzero(labels == unknown)[0]), codes)
            else:
                labels = np.append(labels, unknown)
                codes = np.where(codes < 0, len(labels) - 1, codes)
        return codes, labels
    return label_codes(column, unknown)


def count_by(codes: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, counts) of the cohorts with at least one voter (optionally among `mask`)."""
    chosen = codes if mask is None else codes[mask]
    counts = np.bincount(chosen, minlength=len(labels))
    present = np.flatnonzero(counts)
    return labels[present], counts[present].astype(np.int64)


LOOKUP_SET_ROWS = 1 << 20  # the largest set hashed at once: larger sets are split by value ranges


def row_positions(lookups: pa.Array, values: pa.Array) -> np.ndarray:
    """Row of each lookup in `values` (first occurrence; -1 when absent or null), as int32. A large
    `values` is split into ranges of values hashed one at a time, so the hash table of a roll of
    millions of ids stays the size of one range."""
    out = np.full(len(lookups), -1, dtype=np.int32)
    ranges = -(-len(values) // LOOKUP_SET_ROWS)
    if ranges <= 1:
        found = pc.index_in(lookups, options=pc.SetLookupOptions(values, skip_nulls=True))
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    step = max(1, len(values) // 4096)
    sample = pc.sort_indices(values[::step].drop_null()) if len(values) else None
    cuts = [values[::step].drop_null().take(sample)[int(len(sample) * k / ranges)] for k in range(1, ranges)]
    for low, high in zip([None, *cuts], [*cuts, None]):
        in_values, in_lookups = _in_range(values, low, high), _in_range(lookups, low, high)
        value_rows = np.flatnonzero(in_values)
        lookup_rows = np.flatnonzero(in_lookups)
        found = pc.index_in(lookups.filter(pa.array(in_lookups)),
                            options=pc.SetLookupOptions(values.filter(pa.array(in_values)), skip_nulls=True))
        found = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        out[lookup_rows[found >= 0]] = value_rows[found[found >= 0]]
    return out


def _in_range(array: pa.Array, low, high) -> np.ndarray:
    """low <= value < high (None: unbounded) per row, nulls False."""
    inside = pc.is_valid(array)
    if low is not None:
        inside = pc.and_(inside, pc.greater_equal(array, low))
    if high is not None:
        inside = pc.and_(inside, pc.less(array, high))
    return inside.fill_null(False).to_numpy(zero_copy_only=False)
