"""Fast exact grouping and lookup of address strings: 64-bit hashes (DuckDB's vectorised hash)
for speed, then a string comparison so a hash collision can never merge two addresses."""

from __future__ import annotations

import os
import threading

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    # One in-memory connection per thread and process: connecting costs more than hashing 10^5 rows.
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        _local.con, _local.pid = duckdb.connect(), pid
    return _local.con


def string_hashes(*columns: pa.Array) -> np.ndarray:
    """A 64-bit hash per row of one or more string columns (process-local: never persisted)."""
    names = [f"c{i}" for i in range(len(columns))]
    relation = _connection().from_arrow(pa.table(dict(zip(names, columns))))
    out = relation.project(f"hash({', '.join(names)}) AS h").to_arrow_table()
    return out["h"].to_numpy().view(np.int64)


def _first_rows(codes: np.ndarray, n_groups: int) -> np.ndarray:
    first = np.empty(n_groups, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # reversed: the first occurrence wins
    return first


def group_rows(*columns: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(codes, first): codes[i] numbers the distinct rows of the string columns in first-seen
    order, first[c] is the row where group c first occurs. Exact: on a hash collision it falls back
    to Arrow's dictionary encoder. Nulls count as equal to each other."""
    n = len(columns[0])
    filled = [pc.fill_null(c, "\x00null") for c in columns]
    codes, uniques = pd.factorize(string_hashes(*filled))
    codes = codes.astype(np.int64)
    first = _first_rows(codes, len(uniques))
    back = pa.array(first[codes])
    exact = all(pc.all(pc.equal(c, c.take(back))).as_py() for c in filled) if n else True
    if not exact:
        joined = filled[0] if len(filled) == 1 else pc.binary_join_element_wise(*filled, "\x1f")
        encoded = joined.dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        first = _first_rows(codes, len(encoded.dictionary))
    return codes, first


def group_strings(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """group_rows for one string column."""
    return group_rows(values)


class StringIndex:
    """Positions of strings in a table column, for vectorised exact lookups."""

    def __init__(self, values: pa.Array):
        self.values = values
        hashes = pd.Index(string_hashes(values))
        if hashes.is_unique:  # the usual case: the hash table built by this check serves lookups
            self._positions = None
            self._index = hashes
        else:
            keep = ~hashes.duplicated()
            self._positions = np.flatnonzero(keep)
            self._index = hashes[keep]

    def positions(self, probe: pa.Array) -> np.ndarray:
        """Row of each probe string in `values`, or -1 when absent."""
        if len(self._index) == 0 or len(probe) == 0:
            return np.full(len(probe), -1, dtype=np.int64)
        found = self._index.get_indexer(string_hashes(probe)).astype(np.int64, copy=False)
        if self._positions is None:
            rows = found
        else:
            rows = np.where(found >= 0, self._positions[np.maximum(found, 0)], -1)
        hit = rows >= 0
        if hit.any():
            candidates = self.values.take(pa.array(np.maximum(rows, 0)))
            equal = pc.fill_null(pc.equal(candidates, probe), False).to_numpy(zero_copy_only=False)
            rows = np.where(hit & equal, rows, -1)
        return rows
