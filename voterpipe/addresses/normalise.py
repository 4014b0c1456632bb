"""Normalise a snapshot's residential addresses: unique address strings -> ADDRESSES rows, every
voter -> a VOTER_ADDRESSES row, with a persistent cache so later snapshots parse only new strings.

Work is done on unique cache keys (raw line or pieces, plus ZIP5), never per voter. Grouping and
cache hits are vectorised hash lookups (keyhash); misses are parsed on `processes` worker
processes and appended to the cache.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe import schema
from voterpipe.addresses import parse
from voterpipe.addresses.cache import CACHE_SCHEMA, AddressCache
from voterpipe.addresses.keyhash import group_rows, group_strings

SEP = "\x1f"
PIECE_COLUMNS = ("res_house_number", "res_house_number_suffix", "res_pre_dir", "res_street_name",
                 "res_street_type", "res_post_dir", "res_unit")
KEYED_STATUSES = ("ok", "po_box", "rural_route", "ambiguous")
PARALLEL_MIN_MISSES = 20_000
BATCH_SIZE = 4_000

Progress = Callable[[float, str], None]


@dataclass
class NormalisedAddresses:
    addresses: pa.Table  # schema.ADDRESSES
    voter_addresses: pa.Table  # schema.VOTER_ADDRESSES
    stats: dict = field(default_factory=dict)


def unit_key(unit_type: str, unit_number: str) -> str:
    """The unit part of the household key: the identifier, or the designator when it has none.

    The designator is left out because states write the same dwelling as APT 4B, UNIT 4B or #4B.
    """
    return unit_number or ("" if unit_type == "#" else unit_type)


def address_keys(result: tuple, zip5: str) -> tuple[str | None, str | None]:
    """(address_key, building_key) for one parse result; None when the status has no key."""
    if result[8] not in KEYED_STATUSES:
        return None, None
    building = "|".join((result[0], result[1], result[2], result[3], result[4], zip5))
    unit = unit_key(result[5], result[6])
    address = f"{building}|{unit}"
    return (hashlib.blake2b(address.encode(), digest_size=16).hexdigest(),
            hashlib.blake2b(building.encode(), digest_size=16).hexdigest())


def normalise_cache_key(cache_key: str) -> tuple:
    """Parse one cache key ('L' line or 'P' pieces, then ZIP5): FIELDS + (address_key, building_key)."""
    parts = cache_key.split(SEP)
    zip5 = parts[-1]
    if parts[0] == "P":
        result = parse.normalise_pieces(*parts[1:8])
    else:
        result = parse.normalise_line(parts[1])
    return (*result, *address_keys(result, zip5))


def normalise_batch(cache_keys: list[str]) -> list[tuple]:
    return [normalise_cache_key(k) for k in cache_keys]


def _zip5(column: pa.ChunkedArray) -> pa.ChunkedArray:
    text = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(column.cast(pa.string())), 0, 5)
    valid = pc.and_(pc.equal(pc.utf8_length(text), 5), pc.utf8_is_digit(text))
    return pc.if_else(valid, text, pa.scalar("", pa.string()))


def voter_cache_keys(voters: pa.Table) -> pa.ChunkedArray:
    """One cache key per voter: 'L'+line+ZIP5 for one-line states, 'P'+pieces+ZIP5 otherwise."""
    n = voters.num_rows

    def col(name: str) -> pa.ChunkedArray:
        if name in voters.column_names:
            return voters[name].cast(pa.string())
        return pa.chunked_array([pa.nulls(n, pa.string())])

    zip5 = pc.fill_null(_zip5(col("res_zip5")), "")
    line = col("res_address_line")
    line_key = pc.binary_join_element_wise("L", line, zip5, SEP, null_handling="replace",
                                           null_replacement="")
    pieces = [col(c) for c in PIECE_COLUMNS]
    if all(p.null_count == n for p in pieces):
        return line_key  # a one-line state
    piece_key = pc.binary_join_element_wise("P", *pieces, zip5, SEP, null_handling="replace",
                                            null_replacement="")
    has_line = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(line)), 0), False)
    has_pieces = pc.fill_null(pc.greater(pc.utf8_length(pc.binary_join_element_wise(
        *pieces, "", null_handling="replace", null_replacement="")), 0), False)
    use_pieces = pc.and_(pc.invert(has_line), has_pieces)
    return pc.if_else(use_pieces, piece_key, line_key)


def _key_columns(voters: pa.Table) -> list[pa.Array]:
    """Columns whose values determine a voter's cache key: grouping voters by them groups keys,
    without building one key string per voter."""
    present = [c for c in ("res_address_line", *PIECE_COLUMNS) if c in voters.column_names]
    columns = [voters[c].cast(pa.string()).combine_chunks() for c in present]
    columns = [c for c in columns if c.null_count < len(c)]
    zip_column = voters["res_zip5"] if "res_zip5" in voters.column_names else \
        pa.chunked_array([pa.nulls(voters.num_rows, pa.string())])
    columns.append(_zip5(zip_column).combine_chunks())
    # The key writes a null as "", so null and "" must group together.
    return [pc.fill_null(c, "") for c in columns]


def parse_misses(cache_keys: list[str], processes: int, progress: Progress | None = None) -> list[tuple]:
    """Parse cache keys, in parallel when there are many."""
    if not cache_keys:
        return []
    processes = processes or os.cpu_count() or 1
    batches = [cache_keys[i:i + BATCH_SIZE] for i in range(0, len(cache_keys), BATCH_SIZE)]
    out: list[tuple] = []
    if processes == 1 or len(cache_keys) < PARALLEL_MIN_MISSES:
        for i, batch in enumerate(batches):
            out.extend(normalise_batch(batch))
            if progress:
                progress((i + 1) / len(batches), f"parsed {len(out)} of {len(cache_keys)} new addresses")
        return out
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        for i, result in enumerate(pool.imap(normalise_batch, batches)):
            out.extend(result)
            if progress and (i % 10 == 9 or i + 1 == len(batches)):
                progress((i + 1) / len(batches), f"parsed {len(out)} of {len(cache_keys)} new addresses")
    return out


def resolve_cache_keys(unique_keys: pa.Array, cache: AddressCache | None, processes: int,
                       progress: Progress | None = None) -> tuple[pa.Table, int]:
    """CACHE_SCHEMA rows aligned with `unique_keys`; new results are appended to `cache`."""
    cached = cache.table() if cache is not None else None
    if cached is not None and cached.num_rows:
        rows = cache.positions(unique_keys)
    else:
        rows = np.full(len(unique_keys), -1, dtype=np.int64)
    miss_positions = np.flatnonzero(rows < 0)
    miss_keys = unique_keys.take(pa.array(miss_positions)).to_pylist() if len(miss_positions) else []
    results = parse_misses(miss_keys, processes, progress)
    columns = list(zip(*results)) if results else [[] for _ in range(len(CACHE_SCHEMA) - 1)]
    # The cache stores an absent component as null, as the stage outputs do.
    new_rows = pa.Table.from_arrays(
        [pa.array(miss_keys, pa.string())] + [pa.array([v or None for v in c], pa.string()) for c in columns],
        schema=CACHE_SCHEMA)
    if cache is not None:
        cache.append(new_rows)
    if len(miss_positions) == len(unique_keys):
        return new_rows, len(miss_keys)
    # One take over the cached rows followed by the new ones; the cache_key column is the probe
    # itself (lookups are exact), so it is not copied.
    rows[miss_positions] = cached.num_rows + np.arange(len(miss_positions))
    value_names = CACHE_SCHEMA.names[1:]
    combined = pa.concat_tables([cached.select(value_names), new_rows.select(value_names)])
    values = combined.take(pa.array(rows))
    return pa.Table.from_arrays([unique_keys, *values.columns], schema=CACHE_SCHEMA), len(miss_keys)


def _raw_addresses(voters: pa.Table, rows: np.ndarray, use_pieces: np.ndarray) -> pa.Array:
    """The string the normaliser saw for each of `rows`: the line, or the pieces joined by spaces."""
    n = len(rows)
    take = pa.array(rows)

    def col(name: str) -> pa.Array:
        if name in voters.column_names:
            return voters[name].cast(pa.string()).take(take).combine_chunks()
        return pa.nulls(n, pa.string())

    line = col("res_address_line")
    if not use_pieces.any():
        return line
    # null_handling="skip" is avoided: pyarrow 26 returns a shorter array with it.
    pieces = pc.binary_join_element_wise(*[col(c) for c in PIECE_COLUMNS], " ",
                                         null_handling="replace", null_replacement="")
    pieces = pc.utf8_trim_whitespace(pc.replace_substring_regex(pieces, r"\s+", " "))
    return pc.if_else(pa.array(use_pieces), pieces, line)


def _value_counts(values: pa.Array) -> dict[str, int]:
    counts = pc.value_counts(values)
    return {v.as_py(): c.as_py() for v, c in zip(counts.field("values"), counts.field("counts"))}


def normalise_addresses(voters: pa.Table, state: str, cache: AddressCache | None = None,
                        processes: int = 0, progress: Progress | None = None) -> NormalisedAddresses:
    """Normalise every voter's residential address (voters: VOTERS columns, at least voter_id,
    res_address_line or the piece columns, res_zip5, res_city)."""
    key_columns = _key_columns(voters)
    voter_index, first = group_rows(*key_columns)
    key_source = voters.select([c for c in ("res_address_line", *PIECE_COLUMNS, "res_zip5")
                                if c in voters.column_names])
    unique_keys = voter_cache_keys(key_source.take(pa.array(first))).combine_chunks()
    if len(key_columns) > 2:
        # Line and piece columns both present: rows that differ only in the columns their key
        # ignores share a key; merge those groups.
        key_codes, key_first = group_strings(unique_keys)
        if len(key_first) < len(unique_keys):
            voter_index = key_codes[voter_index]
            first = first[key_first]
            unique_keys = unique_keys.take(pa.array(key_first))
    n_unique = len(unique_keys)
    if progress:
        progress(0.0, f"{voters.num_rows} voters, {n_unique} unique address strings")
    resolved, parsed = resolve_cache_keys(unique_keys, cache, processes, progress)

    counts = np.bincount(voter_index, minlength=n_unique).astype(np.int32)
    take_first = pa.array(first)

    def representative(name: str) -> pa.Array:
        if name in voters.column_names:
            return pc.utf8_upper(voters[name].cast(pa.string()).take(take_first).combine_chunks())
        return pa.nulls(n_unique, pa.string())

    use_pieces = pc.starts_with(unique_keys, "P").to_numpy(zero_copy_only=False)
    zip5 = pc.utf8_slice_codeunits(unique_keys, -5)
    zip5 = pc.if_else(pc.match_substring_regex(zip5, r"^\d{5}$"), zip5, pa.nulls(n_unique, pa.string()))
    per_key = pa.table({
        "address_key": resolved["address_key"], "building_key": resolved["building_key"],
        "raw_address": _raw_addresses(voters, first, use_pieces),
        **{f: resolved[f] for f in parse.FIELDS[:7]},
        "city": representative("res_city"),
        "state": pc.fill_null(representative("res_state"), state.upper()),
        "zip5": zip5,
        "standardized_line": resolved["standardized_line"], "parse_status": resolved["parse_status"],
        "voter_count": pa.array(counts),
    })

    # ADDRESSES: one row per address_key (several raw strings may standardise to one address),
    # plus one row per unparseable string so it can be inspected; missing ones are left out.
    keyed = per_key.filter(pc.is_valid(per_key["address_key"]))
    addresses = _collapse_by_address_key(keyed)
    unparseable = per_key.filter(pc.equal(per_key["parse_status"], "unparseable"))
    addresses = pa.concat_tables([schema.conform(addresses, schema.ADDRESSES),
                                  schema.conform(unparseable, schema.ADDRESSES)])

    idx = pa.array(voter_index)
    voter_addresses = pa.table({
        "voter_id": voters["voter_id"].cast(pa.string()),
        "address_key": per_key["address_key"].take(idx),
        "building_key": per_key["building_key"].take(idx),
        "parse_status": per_key["parse_status"].take(idx),
    })
    by_string = _value_counts(per_key["parse_status"].combine_chunks())
    by_voter = Counter()
    status_codes = pc.index_in(per_key["parse_status"], value_set=pa.array(schema.PARSE_STATUSES))
    per_status = np.bincount(status_codes.to_numpy(zero_copy_only=False).astype(np.int64),
                             weights=counts, minlength=len(schema.PARSE_STATUSES))
    by_voter.update({s: int(per_status[i]) for i, s in enumerate(schema.PARSE_STATUSES)})
    stats = {
        "voters": voters.num_rows,
        "unique_address_strings": n_unique,
        "addresses": addresses.num_rows,
        "parsed_new": parsed,
        "cache_hits": n_unique - parsed,
        "rules_version": parse.RULES_VERSION,
        "voters_by_parse_status": {s: int(by_voter.get(s, 0)) for s in schema.PARSE_STATUSES},
        "address_strings_by_parse_status": {s: int(by_string.get(s, 0)) for s in schema.PARSE_STATUSES},
    }
    return NormalisedAddresses(schema.conform(addresses, schema.ADDRESSES),
                               schema.conform(voter_addresses, schema.VOTER_ADDRESSES), stats)


def _digest_words(keys: pa.Array) -> np.ndarray | None:
    """The 128-bit digests written as 32 hex digits in `keys` (no nulls), as (n, 2) uint64 words;
    None unless every key is exactly that. Equal words <=> equal strings, without hashing."""
    n = len(keys)
    if keys.null_count or keys.type != pa.string():
        return None
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32, count=n + 1, offset=keys.offset * 4)
    if n == 0 or not (np.diff(offsets) == 32).all():
        return None
    text = np.frombuffer(keys.buffers()[2], dtype=np.uint8, count=32 * n, offset=int(offsets[0]))
    nibbles = _HEX_VALUE[text]
    if (nibbles > 15).any():
        return None
    nibbles = nibbles.reshape(n, 16, 2)
    packed = (nibbles[:, :, 0] << 4) | nibbles[:, :, 1]
    return np.ascontiguousarray(packed).view(np.uint64)


_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)


def _group_address_keys(keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """group_strings for address keys: keys are hex digests, so their own bits are the hash."""
    words = _digest_words(keys)
    if words is None:
        return group_strings(keys)
    codes, uniques = pd.factorize(words[:, 0])
    codes = codes.astype(np.int64)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # reversed: the first occurrence wins
    if not (words[first[codes], 1] == words[:, 1]).all():  # equal first halves, different keys
        return group_strings(keys)
    return codes, first


def _collapse_by_address_key(keyed: pa.Table) -> pa.Table:
    """One row per address_key: the first string's fields, voter counts summed."""
    if keyed.num_rows == 0:
        return keyed
    groups, first = _group_address_keys(keyed["address_key"].combine_chunks())
    if len(first) == keyed.num_rows:
        return keyed
    totals = np.bincount(groups, weights=keyed["voter_count"].to_numpy(), minlength=len(first))
    is_first = np.zeros(keyed.num_rows, dtype=bool)
    is_first[first] = True  # groups are numbered in first-seen order, so row order = group order
    out = keyed.filter(pa.array(is_first))
    return out.set_column(out.schema.get_field_index("voter_count"), "voter_count",
                          pa.array(totals.astype(np.int32)))
