"""Split a snapshot's heavy stages into K partitions by a stable hash of a key, and merge the
partition outputs back into exactly what one unpartitioned run writes."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROW = "voter_row"  # a partition table's column: the voter's row in voters.parquet
FIRST_ROW = "first_row"  # an address's first voter's row in voters.parquet

_HEX = np.zeros(256, dtype=np.uint32)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint32)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint32)


def stable_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The first 32 bits of the MD5 of each string (null: of ""), as uint32. MD5 is the same on
    every machine and version, so every worker puts a key in the same partition (DuckDB's own
    hash() is faster but not promised stable)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        digests = con.from_arrow(pa.table({"v": values.cast(pa.string())})) \
            .project("md5(coalesce(v, '')) AS h").to_arrow_table()["h"].combine_chunks()
    finally:
        con.close()
    offsets = np.frombuffer(digests.buffers()[1], dtype=np.int32, count=n + 1, offset=digests.offset * 4)
    data = np.frombuffer(digests.buffers()[2], dtype=np.uint8)[int(offsets[0]):int(offsets[-1])]
    hexes = data.reshape(n, 32)[:, :8]
    out = np.zeros(n, dtype=np.uint32)
    for column in range(8):
        out = (out << np.uint32(4)) | _HEX[hexes[:, column]]
    return out


def partition_numbers(values: pa.Array | pa.ChunkedArray, partitions: int) -> np.ndarray:
    """The partition (0 .. partitions - 1) of each key; a null key goes to partition 0."""
    numbers = (stable_hashes(values) % np.uint32(partitions)).astype(np.int64)
    if values.null_count:
        numbers[pc.is_null(values).to_numpy(zero_copy_only=False)] = 0
    return numbers


def rows_of_partition(values: pa.Array | pa.ChunkedArray, partition: int, partitions: int) -> np.ndarray:
    """Row numbers (ascending) of the keys that fall in `partition`."""
    return np.flatnonzero(partition_numbers(values, partitions) == partition)


def with_rows(table: pa.Table, rows: np.ndarray, name: str = ROW) -> pa.Table:
    return table.append_column(name, pa.array(np.asarray(rows, dtype=np.int64)))


def in_row_order(pieces: list[pa.Table], expected_rows: int | None = None, name: str = ROW) -> pa.Table:
    """Concatenate partition tables and sort them by their row column (which is then dropped);
    refuse when a row is missing or appears twice (workers that disagree on the partitions)."""
    table = pa.concat_tables(pieces)
    rows = table[name].to_numpy()
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    if len(ordered) and (np.any(np.diff(ordered) == 0)):
        raise ValueError(f"partitions overlap: {int(np.sum(np.diff(ordered) == 0))} rows appear in two partitions")
    if expected_rows is not None and len(ordered) != expected_rows:
        raise ValueError(f"partitions hold {len(ordered)} rows, the input has {expected_rows}")
    return table.take(pa.array(order)).drop_columns([name])


def first_rows_of_groups(keys: pa.Array, rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """(distinct non-null keys in first-seen order, the row where each is first seen)."""
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    valid = np.flatnonzero(pc.is_valid(keys).to_numpy(zero_copy_only=False))
    present = keys.take(pa.array(valid))
    encoded = present.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    first = np.full(len(encoded.dictionary), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # reversed: the first occurrence wins
    order = np.argsort(first, kind="stable")
    return encoded.dictionary.take(pa.array(order)), np.asarray(rows)[valid[first[order]]]


def first_voter_rows(addresses: pa.Table, links: pa.Table, keys: pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """Each ADDRESSES row's first voter (its row in voters.parquet): by address_key for keyed
    rows; the unparseable rows follow, one per distinct raw string in first-seen order."""
    keyed_keys, keyed_first = first_rows_of_groups(links["address_key"], rows)
    unparseable = pc.fill_null(pc.equal(links["parse_status"], "unparseable"), False).to_numpy(zero_copy_only=False)
    picked = np.flatnonzero(unparseable)
    _, other_first = first_rows_of_groups(keys.take(pa.array(picked)), rows[picked])
    address_keys = addresses["address_key"].combine_chunks()
    keyed = address_keys.filter(pc.is_valid(address_keys))
    found = pc.index_in(keyed, value_set=keyed_keys)
    if found.null_count or len(keyed) + len(other_first) != len(address_keys):
        raise AssertionError(f"{len(address_keys)} address rows: {len(keyed) - found.null_count} keyed and "
                             f"{len(other_first)} unparseable ones have a first voter")
    return np.concatenate([keyed_first[found.to_numpy(zero_copy_only=False)], other_first]).astype(np.int64)


def merge_addresses(pieces: list[pa.Table]) -> pa.Table:
    """ADDRESSES rows from partitions split by raw address string, as one run writes them: one row
    per address_key (several raw strings in several partitions may standardise to one key) whose
    fields are those of its first voter and whose voter_count is the sum; keyed rows by first voter,
    then the unparseable ones by first voter. Each piece carries FIRST_ROW."""
    table = pa.concat_tables(pieces)
    keyed = table.filter(pc.is_valid(table["address_key"]))
    other = table.filter(pc.is_null(table["address_key"]))
    keyed = keyed.take(pc.sort_indices(keyed, [(FIRST_ROW, "ascending")]))
    keys = keyed["address_key"].combine_chunks()
    encoded = keys.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    first = np.full(len(encoded.dictionary), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    counts = np.bincount(codes, weights=keyed["voter_count"].to_numpy(zero_copy_only=False).astype(np.int64),
                         minlength=len(first)).astype(np.int32)
    chosen = keyed.take(pa.array(first)).set_column(
        keyed.schema.get_field_index("voter_count"), "voter_count", pa.array(counts))
    chosen = chosen.take(pc.sort_indices(chosen, [(FIRST_ROW, "ascending")]))
    other = other.take(pc.sort_indices(other, [(FIRST_ROW, "ascending")]))
    return pa.concat_tables([chosen, other.cast(chosen.schema)]).drop_columns([FIRST_ROW])


def sum_counts(manifests: list[dict], names: tuple[str, ...]) -> dict:
    """Add up counts (numbers, or dicts of numbers) of the partitions' manifests."""
    total: dict = {}
    for name in names:
        values = [m.get(name) for m in manifests if m.get(name) is not None]
        if values and all(isinstance(v, dict) for v in values):
            keys = sorted({k for v in values for k in v}, key=str)
            merged = {k: sum(v.get(k, 0) for v in values) for k in keys}
            first = values[0]  # keep the first partition's key order (a status list, say)
            total[name] = {k: merged[k] for k in [*first, *[k for k in keys if k not in first]]}
        elif values:
            total[name] = sum(values)
    return total
