"""A persistent cache of geocoding results keyed by address_key, backend, benchmark and vintage.

Each finished batch becomes one immutable Parquet part file written atomically, so a crash loses
at most the batches in flight and concurrent writers never touch each other's files. A compaction
holds the directory's lock (cache_lock) and deletes only parts it has read into its merged part,
after that part is in place, so appends racing it are never lost.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import schema, storage
from voterpipe.cache_lock import compaction_lock

PART_SUFFIX = ".parquet"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str) -> str:
    cleaned = _UNSAFE.sub("_", str(text)).strip("._")
    return cleaned or "_"


class GeocodeCache:
    """Results of one backend/benchmark/vintage under `directory` (storage.cache_dir('geocodes')).

    lookup() returns the newest stored row of every key it knows; store() adds one part file.
    Both are safe to call from several threads; parts written by other processes are picked up by
    the next lookup().
    """

    def __init__(self, directory: Path | None, backend: str, benchmark: str, vintage: str):
        root = Path(directory) if directory is not None else storage.cache_dir("geocodes")
        self.backend, self.benchmark, self.vintage = str(backend), str(benchmark), str(vintage)
        self.directory = root / _safe(self.backend) / f"{_safe(self.benchmark)}__{_safe(self.vintage)}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._parts: dict[str, pa.Table] = {}  # part file name -> its table, read once
        self._index: pa.Table | None = None  # newest row per key over all parts read so far

    def __repr__(self) -> str:
        return f"GeocodeCache({str(self.directory)!r})"

    # -- reading ---------------------------------------------------------------------------------
    def _part_names(self) -> list[str]:
        # Names start with a nanosecond timestamp, so sorting them orders parts oldest first.
        return sorted(p.name for p in self.directory.iterdir()
                      if p.name.endswith(PART_SUFFIX) and not p.name.startswith("."))

    def _refresh(self) -> pa.Table:
        """Read part files not seen yet; rebuild the newest-row-per-key index if any were new."""
        added = False
        for _ in range(5):
            names = self._part_names()
            new = [n for n in names if n not in self._parts]
            added |= bool(new)
            vanished = False
            for name in new:
                try:
                    table = pq.read_table(self.directory / name)
                except FileNotFoundError:  # removed by a concurrent compact(): list again for its merged part
                    vanished = True
                    continue
                self._parts[name] = schema.conform(table, schema.GEOCODES)
            if not vanished:
                break
        gone = set(self._parts) - set(names)
        for name in gone:
            del self._parts[name]
        if added or gone or self._index is None:
            ordered = [self._parts[n] for n in sorted(self._parts)]
            table = pa.concat_tables(ordered) if ordered else schema.empty_table(schema.GEOCODES)
            # A single part (the usual state after compact()) holds each key once already.
            self._index = table if len(ordered) == 1 else newest_per_key(table)
        return self._index

    def lookup(self, address_keys: list[str] | pa.Array | pd.Series) -> pd.DataFrame:
        """Rows of schema.GEOCODES for the keys present in the cache (any order, one per key)."""
        return self.lookup_table(address_keys).to_pandas()

    def lookup_table(self, address_keys: list[str] | pa.Array | pd.Series) -> pa.Table:
        """lookup() as an Arrow table in schema.GEOCODES."""
        if isinstance(address_keys, pa.ChunkedArray):
            keys = address_keys.combine_chunks()
        elif isinstance(address_keys, pa.Array):
            keys = address_keys
        elif isinstance(address_keys, pd.Series):
            keys = pa.array(address_keys, type=pa.string(), from_pandas=True)
        else:
            keys = pa.array(list(address_keys), type=pa.string())
        keys = keys.cast(pa.string())
        with self._lock:
            index = self._refresh()
        if index.num_rows == 0 or len(keys) == 0:
            return schema.empty_table(schema.GEOCODES)
        return index.filter(pc.is_in(index.column("address_key"), value_set=keys))

    def __len__(self) -> int:
        with self._lock:
            return self._refresh().num_rows

    def part_tables(self, batch_rows: int = 65_536):
        """Every part's rows, oldest part first, a batch at a time in schema.GEOCODES (for callers
        that must not hold the whole cache); a part a concurrent compaction removed is skipped."""
        for name in self._part_names():
            try:
                source = pq.ParquetFile(self.directory / name)
            except FileNotFoundError:
                continue
            for batch in source.iter_batches(batch_rows):
                yield schema.conform(pa.Table.from_batches([batch]), schema.GEOCODES)

    # -- writing ---------------------------------------------------------------------------------
    def store(self, results: pd.DataFrame | pa.Table, _name: str | None = None) -> Path | None:
        """Persist one finished batch as a new immutable part file; returns its path."""
        table = results if isinstance(results, pa.Table) else pa.Table.from_pandas(
            results, preserve_index=False)
        if table.num_rows == 0:
            return None
        table = schema.conform(table, schema.GEOCODES)
        if table.column("address_key").null_count:
            raise ValueError("GeocodeCache.store: every row needs an address_key")
        name = _name or f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{PART_SUFFIX}"
        path = self.directory / name
        storage.write_parquet(table, path)
        return path

    def parts(self) -> int:
        """How many part files a reader opens now."""
        return len(self._part_names())

    def compact(self, wait_seconds: float = 0.0) -> int:
        """Merge all parts into one (newest row per key); returns the number of parts removed
        (0 also when another process held the compaction lock for `wait_seconds`)."""
        with self._lock, compaction_lock(self.directory, wait_seconds) as held:
            old = self._part_names()
            if not held or len(old) <= 1:
                return 0
            from voterpipe.geocode.compaction import merge_parts  # (it imports this module)

            # The merged part sorts right after the newest part it replaces, so parts other
            # writers add meanwhile (later timestamps) still sort after it and win over it.
            # It is written in bounded memory and not read back: the next lookup reads it.
            try:
                merge_parts([self.directory / n for n in old], self.directory / (old[-1][: -len(PART_SUFFIX)] + "~c" + PART_SUFFIX))
            except FileNotFoundError:  # a part went meanwhile (a compaction by a version without the lock)
                return 0
            for name in old:
                try:
                    (self.directory / name).unlink()
                except FileNotFoundError:
                    pass
            self._parts.clear()
            self._index = None
            return len(old)


def newest_per_key(table: pa.Table) -> pa.Table:
    """Keep the last row of every address_key (rows are in part order, oldest first)."""
    if table.num_rows == 0:
        return table
    keys = table.column("address_key").to_pandas()
    keep = ~keys.duplicated(keep="last").to_numpy()
    return table.filter(pa.array(keep))


# -- cache-first geocoding of a stage's unique addresses -------------------------------------------
SENDABLE_PARSE_STATUSES = ("ok", "ambiguous")


def sendable_addresses(addresses: pd.DataFrame) -> pd.Series:
    """True where an address is worth sending to a geocoder: parsed ok/ambiguous, number + street."""
    def filled(column: str) -> pd.Series:
        if column not in addresses.columns:
            return pd.Series(False, index=addresses.index)
        return addresses[column].fillna("").astype(str).str.strip() != ""

    status = addresses["parse_status"] if "parse_status" in addresses.columns else pd.Series(
        "ok", index=addresses.index)
    return (status.isin(SENDABLE_PARSE_STATUSES) & addresses["address_key"].notna()
            & filled("house_number") & filled("street_name"))


def geocode_addresses(addresses: pd.DataFrame, cache: GeocodeCache, backend, *,
                      backend_stores: bool = False, chunk_rows: int | None = 250_000,
                      progress=None) -> tuple[pd.DataFrame, dict]:
    """One GEOCODES row per distinct address_key: cache hits first, misses through `backend`.

    `backend(frame) -> GEOCODES frame` gets the ADDRESSES rows of cache misses, `chunk_rows` at a
    time (None = all at once); each chunk's result is stored in the cache unless the backend
    stores its own batches (`backend_stores`, as the Census client does). Rows that are not
    sendable get status 'not_sent' and are never cached.
    """
    table, stats = geocode_addresses_table(addresses, cache, backend, backend_stores=backend_stores,
                                           chunk_rows=chunk_rows, progress=progress)
    return table.to_pandas(), stats


def first_rows(keys: pa.Array) -> pa.Array:
    """Row of the first occurrence of every distinct non-null key, in row order."""
    firsts = pc.index_in(pc.unique(keys.drop_null()), value_set=keys, skip_nulls=True)
    return firsts.take(pc.sort_indices(firsts))


def geocode_addresses_table(addresses: pd.DataFrame | pa.Table, cache: GeocodeCache, backend, *,
                            backend_stores: bool = False, chunk_rows: int | None = 250_000,
                            progress=None, row_numbers: np.ndarray | None = None) -> tuple[pa.Table, dict]:
    """geocode_addresses on Arrow: a schema.GEOCODES table sorted by address_key (the same rows).
    Only the cache misses become pandas (for the backend), so a run whose addresses are nearly
    all cached costs a lookup and a sort. row_numbers: the rows' index for the backend (default
    their positions in `addresses`)."""
    if isinstance(addresses, pd.DataFrame):
        addresses = pa.Table.from_pandas(addresses.reset_index(drop=True), preserve_index=False)
    rows = first_rows(addresses.column("address_key").combine_chunks())
    unique = addresses.take(rows)  # drop_duplicates('address_key') of the non-null keys
    probe = unique.select([c for c in ("address_key", "parse_status", "house_number", "street_name")
                           if c in unique.column_names]).to_pandas()
    mask = sendable_addresses(probe).to_numpy(dtype=bool)
    sendable_keys = unique.column("address_key").filter(pa.array(mask))
    hits = cache.lookup_table(sendable_keys)
    missed = mask.copy()
    missed[mask] = ~pc.is_in(sendable_keys, value_set=hits.column("address_key")).to_numpy(zero_copy_only=False)
    misses = np.flatnonzero(missed)
    unsent = unique.column("address_key").filter(pa.array(~mask))
    parts = [hits, schema.conform(pa.table({"address_key": unsent, "status": pa.array(["not_sent"] * len(unsent)),
                                            "backend": pa.array([cache.backend] * len(unsent))}), schema.GEOCODES)]
    step = len(misses) if not chunk_rows else int(chunk_rows)
    done = matched = 0
    for start in range(0, len(misses), max(step, 1)):
        taken = misses[start:start + step]
        chunk = unique.take(pa.array(taken)).to_pandas()
        positions = rows.to_numpy()[taken]  # the rows' positions in `addresses`, as pandas had them
        chunk.index = positions if row_numbers is None else np.asarray(row_numbers)[positions]
        result = backend(chunk)
        result = result[_is_in(result["address_key"], chunk["address_key"])]
        if not backend_stores:
            cache.store(result)
        parts.append(schema.conform(pa.Table.from_pandas(result, preserve_index=False), schema.GEOCODES))
        done += len(chunk)
        matched += int((result["status"] == "match").sum())
        if progress is not None:
            progress(done / len(misses), f"geocoded {done}/{len(misses)} new addresses, "
                                         f"{matched / max(done, 1):.0%} matched")
    table = pa.concat_tables(parts)
    if len(misses):
        table = newest_per_key(table)  # a backend's repeated key: its last row (hits are unique)
    table = table.take(pc.sort_indices(table, [("address_key", "ascending")]))
    lost = pc.invert(pc.is_in(unique.column("address_key"), value_set=table.column("address_key")))
    if pc.any(lost).as_py():
        raise RuntimeError(f"geocoder returned no row for {pc.sum(lost).as_py()} address keys "
                           f"(e.g. {unique.column('address_key').filter(lost)[0]})")
    stats = {"addresses": unique.num_rows, "sendable": int(mask.sum()), "not_sent": len(unsent),
             "cache_hits": hits.num_rows, "cache_misses": len(misses)}
    return table, stats


def match_rates(geocodes: pd.DataFrame, groups: pd.Series) -> dict:
    """{group: {addresses, match, tie, no_match, not_sent, match_rate}}; `groups` aligned by address_key.

    match_rate is matches over addresses that were sent (not_sent excluded).
    """
    return match_rates_aligned(geocodes["status"].to_numpy(dtype=object),
                               groups.reindex(geocodes["address_key"]).fillna("unknown").to_numpy(dtype=object))


def match_rates_aligned(statuses: np.ndarray, groups: np.ndarray) -> dict:
    """match_rates with each geocode's group given row for row (null groups count as 'unknown')."""
    groups = pd.Series(groups, dtype=object).fillna("unknown").to_numpy(dtype=object)
    codes, names = pd.factorize(groups, sort=True)
    size = len(names)
    totals = np.bincount(codes, minlength=size)
    by_status = {s: np.bincount(codes[statuses == s], minlength=size) for s in schema.GEOCODE_STATUSES}
    out = {}
    for i, group in enumerate(names):
        sent = int(totals[i] - by_status["not_sent"][i])
        out[str(group)] = {
            "addresses": int(totals[i]),
            **{s: int(by_status[s][i]) for s in schema.GEOCODE_STATUSES},
            "match_rate": round(float(by_status["match"][i]) / sent, 6) if sent else None,
        }
    return out


def _is_in(values: pd.Series, candidates: pd.Series) -> np.ndarray:
    """values.isin(candidates) for string keys via Arrow (pandas' Arrow-string isin is slow)."""
    if len(values) == 0 or len(candidates) == 0:
        return np.zeros(len(values), dtype=bool)
    mask = pc.is_in(pa.array(values, pa.string(), from_pandas=True),
                    value_set=pa.array(candidates, pa.string(), from_pandas=True))
    return mask.to_numpy(zero_copy_only=False).astype(bool)
