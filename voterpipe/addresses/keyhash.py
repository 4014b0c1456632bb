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


def string_hashes(values: pa.Array) -> np.ndarray:
    """A 64-bit hash per string (process-local use only: never persisted)."""
    out = _connection().from_arrow(pa.table({"k": values})).project("hash(k) AS h").to_arrow_table()
    return out["h"].to_numpy().view(np.int64)


def group_strings(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(codes, first): codes[i] numbers the distinct strings in first-seen order and first[c] is
    the row where string c first occurs. Exact: a hash collision falls back to Arrow's encoder."""
    n = len(values)
    hashes = string_hashes(values)
    codes, uniques = pd.factorize(hashes)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # reversed, so the first occurrence is written last
    representatives = values.take(pa.array(first)).take(pa.array(codes))
    same = pc.equal(pc.fill_null(values, "\x00null"), pc.fill_null(representatives, "\x00null"))
    if n and not pc.all(same).as_py():
        encoded = values.dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        first = np.empty(len(encoded.dictionary), dtype=np.int64)
        first[codes[::-1]] = np.arange(n - 1, -1, -1)
    return codes.astype(np.int64), first


class StringIndex:
    """Positions of strings in a table column, for vectorised exact lookups."""

    def __init__(self, values: pa.Array):
        self.values = values
        hashes = pd.Index(string_hashes(values))
        keep = ~hashes.duplicated()
        self._positions = np.flatnonzero(keep)
        self._index = hashes[keep]

    def positions(self, probe: pa.Array) -> np.ndarray:
        """Row of each probe string in `values`, or -1 when absent."""
        if len(self._index) == 0 or len(probe) == 0:
            return np.full(len(probe), -1, dtype=np.int64)
        found = self._index.get_indexer(string_hashes(probe))
        rows = np.where(found >= 0, self._positions[np.maximum(found, 0)], -1)
        hit = rows >= 0
        if hit.any():
            candidates = self.values.take(pa.array(np.maximum(rows, 0)))
            equal = pc.fill_null(pc.equal(candidates, probe), False).to_numpy(zero_copy_only=False)
            rows = np.where(hit & equal, rows, -1)
        return rows
