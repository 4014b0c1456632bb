"""Normalise a snapshot's residential addresses: unique address strings -> ADDRESSES rows, every
voter -> a VOTER_ADDRESSES row, with a persistent cache so later snapshots parse only new strings.

Work is done on unique cache keys (raw line or pieces, plus ZIP5), never per voter. Grouping and
cache hits are vectorised hash lookups (keyhash); misses are parsed by this process and
`processes - 1` forked ones and appended to the cache. Cached results are never copied whole:
the outputs take just the rows and columns they need from the (memory-mapped) cache table.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
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
PARALLEL_MIN_MISSES = 2_000  # below this, forking costs more than it saves
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


def _zip5(column: pa.ChunkedArray) -> pa.Array:
    """The first five characters when they are digits (after trimming), else ""; null stays null."""
    column = column.cast(pa.string()).combine_chunks()
    if _all_five_digits(column):
        return column
    text = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(column), 0, 5)
    valid = pc.and_(pc.equal(pc.utf8_length(text), 5), pc.utf8_is_digit(text))
    return pc.if_else(valid, text, pa.scalar("", pa.string()))


def _all_five_digits(column: pa.Array) -> bool:
    """Whether every non-null value is exactly five ASCII digits (canonical voter files' ZIP5
    column): then _zip5 has nothing to change, which numpy checks far faster than Arrow kernels."""
    n = len(column)
    if n == 0 or column.type != pa.string():
        return False
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32, count=n + 1, offset=column.offset * 4)
    lengths = np.diff(offsets)
    if column.null_count:
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        if not ((lengths == 5) | (~valid & (lengths == 0))).all():
            return False
    elif not (lengths == 5).all():
        return False
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8, count=int(offsets[-1] - offsets[0]),
                         offset=int(offsets[0]))
    return bool(((data >= 0x30) & (data <= 0x39)).all())


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


def _key_columns(voters: pa.Table) -> dict[str, pa.Array]:
    """Columns whose values determine a voter's cache key (by name; ZIP5 last): grouping voters by
    them groups keys, without building one key string per voter."""
    present = [c for c in ("res_address_line", *PIECE_COLUMNS) if c in voters.column_names]
    columns = {c: voters[c].cast(pa.string()).combine_chunks() for c in present}
    columns = {c: v for c, v in columns.items() if v.null_count < len(v)}
    zip_column = voters["res_zip5"] if "res_zip5" in voters.column_names else \
        pa.chunked_array([pa.nulls(voters.num_rows, pa.string())])
    columns["res_zip5"] = _zip5(zip_column)
    # The key writes a null as "", so null and "" must group together.
    return {c: pc.fill_null(v, "") for c, v in columns.items()}


def parse_misses(cache_keys: list[str], processes: int, progress: Progress | None = None) -> list[tuple]:
    """Parse cache keys; with processes > 1 and enough keys, this process and processes - 1 forked
    children take batches from a shared counter until none is left (no pool to start and stop,
    and a process slowed by other jobs just takes fewer batches)."""
    if not cache_keys:
        return []
    processes = processes or os.cpu_count() or 1
    if len(cache_keys) < PARALLEL_MIN_MISSES or multiprocessing.current_process().daemon:
        processes = 1  # a daemonic process may not have children
    size = max(1, min(BATCH_SIZE, -(-len(cache_keys) // (4 * processes))))
    batches = [cache_keys[i:i + size] for i in range(0, len(cache_keys), size)]
    context = multiprocessing.get_context("fork")
    claimed = context.Value("q", 0) if processes > 1 else None
    serial_claims = itertools.count()

    def claim() -> int:
        if claimed is None:
            return next(serial_claims)
        with claimed.get_lock():
            claimed.value += 1
            return claimed.value - 1

    def parse_claimed(report: Progress | None) -> dict[int, list[tuple]]:
        done = {}
        while (i := claim()) < len(batches):
            done[i] = normalise_batch(batches[i])
            if report:
                report((i + 1) / len(batches),
                       f"parsing {len(cache_keys)} new addresses, batch {i + 1} of {len(batches)}")
        return done

    def child(conn) -> None:
        conn.send(parse_claimed(None))
        conn.close()

    workers = []
    finished = False
    try:
        for _ in range(processes - 1):
            reader, writer = context.Pipe(duplex=False)
            worker = context.Process(target=child, args=(writer,), daemon=True)
            worker.start()
            writer.close()
            workers.append((reader, worker))
        done = parse_claimed(progress)
        for reader, worker in workers:
            try:
                done.update(reader.recv())
            except EOFError:
                worker.join()
                raise RuntimeError(f"an address parsing process died (exit code {worker.exitcode})") from None
        finished = True
    finally:
        for reader, worker in workers:
            if not finished:  # stop the others rather than leave them blocked on a full pipe
                worker.terminate()
            worker.join()
            reader.close()
    return [row for i in range(len(batches)) for row in done[i]]


def resolve_cache_keys(unique_keys: pa.Array, cache: AddressCache | None, processes: int,
                       progress: Progress | None = None) -> tuple[pa.Table, np.ndarray, int]:
    """(results, rows, parsed): `results` holds CACHE_SCHEMA's value columns (everything but
    cache_key) and results row rows[i] is the result for unique_keys[i]. Misses are parsed and
    appended to `cache`. The cached rows are not copied: `results` is the cache table followed by
    the new rows, so callers take only the rows and columns they need."""
    results, rows, new_rows = lookup_and_parse(unique_keys, cache, processes, progress)
    if cache is not None:
        cache.append(new_rows)
    return results, rows, new_rows.num_rows


def lookup_and_parse(unique_keys: pa.Array, cache, processes: int,
                     progress: Progress | None = None) -> tuple[pa.Table, np.ndarray, pa.Table]:
    """resolve_cache_keys without the append: (results, rows, new cache rows in unique_keys order).
    `cache` needs table() and positions() (an AddressCache, or one bucket's slice of it)."""
    cached = cache.table() if cache is not None else CACHE_SCHEMA.empty_table()
    if cached.num_rows:
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
    rows[miss_positions] = cached.num_rows + np.arange(len(miss_positions))
    value_names = CACHE_SCHEMA.names[1:]
    if not cached.num_rows:
        return new_rows.select(value_names), rows, new_rows
    return pa.concat_tables([cached.select(value_names), new_rows.select(value_names)]), rows, new_rows


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


def normalise_addresses(voters: pa.Table, state: str, cache: AddressCache | None = None,
                        processes: int = 0, progress: Progress | None = None) -> NormalisedAddresses:
    """Normalise every voter's residential address (voters: VOTERS columns, at least voter_id,
    res_address_line or the piece columns, res_zip5, res_city)."""
    rows = normalise_rows(voters, state, cache, processes, progress)
    if cache is not None:
        cache.append(rows.new_cache_rows)
    return rows.result


@dataclass
class NormalisedRows:
    """normalise_addresses' result with the (local) voter rows a caller merging several runs needs."""
    result: NormalisedAddresses
    address_first: np.ndarray  # each ADDRESSES row's first voter
    keyed_addresses: int  # ADDRESSES rows before the unparseable ones
    new_cache_rows: pa.Table  # CACHE_SCHEMA rows parsed now, by first voter
    new_cache_first: np.ndarray  # each new cache row's first voter


def normalise_rows(voters: pa.Table, state: str, cache=None, processes: int = 0,
                   progress: Progress | None = None) -> NormalisedRows:
    """normalise_addresses without appending to `cache` (which needs table() and positions())."""
    key_columns = _key_columns(voters)
    voter_index, first = group_rows(*key_columns.values())
    if list(key_columns) == ["res_address_line", "res_zip5"]:  # a one-line state: 'L' keys
        take_first = pa.array(first)
        unique_keys = pc.binary_join_element_wise("L", key_columns["res_address_line"].take(take_first),
                                                  key_columns["res_zip5"].take(take_first), SEP)
    else:
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
    results, rows, new_rows = lookup_and_parse(unique_keys, cache, processes, progress)
    parsed = new_rows.num_rows
    new_first = first[rows >= (results.num_rows - parsed)] if parsed else np.zeros(0, dtype=np.int64)
    counts = np.bincount(voter_index, minlength=n_unique)

    # Everything below works on row numbers and takes each output column once.
    status = results["parse_status"].take(pa.array(rows))
    status_codes = pc.index_in(status, value_set=pa.array(schema.PARSE_STATUSES)) \
        .to_numpy(zero_copy_only=False).astype(np.int64)
    keyed = np.isin(status_codes, [schema.PARSE_STATUSES.index(s) for s in KEYED_STATUSES])
    keyed_positions = np.flatnonzero(keyed)
    # ADDRESSES: one row per address_key (several raw strings may standardise to one address),
    # plus one row per unparseable string so it can be inspected; missing ones are left out.
    address_keys = results["address_key"].take(pa.array(rows[keyed_positions])).combine_chunks()
    groups, group_first = group_address_keys(address_keys)
    unparseable = np.flatnonzero(status_codes == schema.PARSE_STATUSES.index("unparseable"))
    chosen = np.concatenate([keyed_positions[group_first], unparseable])
    voter_count = np.concatenate([np.bincount(groups, weights=counts[keyed_positions],
                                              minlength=len(group_first)), counts[unparseable]])
    chosen_results = results.take(pa.array(rows[chosen]))
    chosen_keys = unique_keys.take(pa.array(chosen))
    take_first = pa.array(first[chosen])

    def representative(name: str) -> pa.Array:
        if name in voters.column_names:
            return pc.utf8_upper(voters[name].cast(pa.string()).take(take_first).combine_chunks())
        return pa.nulls(len(chosen), pa.string())

    # The key ends with the voter's ZIP5 column value ("" when it is invalid or absent).
    zip5 = key_columns["res_zip5"].take(take_first)
    zip5 = pc.if_else(pc.equal(zip5, ""), pa.scalar(None, pa.string()), zip5)
    addresses = pa.table({
        "address_key": chosen_results["address_key"], "building_key": chosen_results["building_key"],
        "raw_address": _raw_addresses(voters, first[chosen],
                                      pc.starts_with(chosen_keys, "P").to_numpy(zero_copy_only=False)),
        **{f: chosen_results[f] for f in parse.FIELDS[:7]},
        "city": representative("res_city"),
        "state": pc.fill_null(representative("res_state"), state.upper()),
        "zip5": zip5,
        "standardized_line": chosen_results["standardized_line"],
        "parse_status": chosen_results["parse_status"],
        "voter_count": pa.array(voter_count.astype(np.int32)),
    })

    voter_rows = pa.array(rows[voter_index])
    voter_addresses = pa.table({
        "voter_id": voters["voter_id"].cast(pa.string()),
        "address_key": results["address_key"].take(voter_rows),
        "building_key": results["building_key"].take(voter_rows),
        "parse_status": results["parse_status"].take(voter_rows),
    })
    by_string = np.bincount(status_codes, minlength=len(schema.PARSE_STATUSES))
    by_voter = np.bincount(status_codes, weights=counts, minlength=len(schema.PARSE_STATUSES))
    stats = {
        "voters": voters.num_rows,
        "unique_address_strings": n_unique,
        "addresses": addresses.num_rows,
        "parsed_new": parsed,
        "cache_hits": n_unique - parsed,
        "rules_version": parse.RULES_VERSION,
        "voters_by_parse_status": dict(zip(schema.PARSE_STATUSES, map(int, by_voter))),
        "address_strings_by_parse_status": dict(zip(schema.PARSE_STATUSES, map(int, by_string))),
    }
    result = NormalisedAddresses(schema.conform(addresses, schema.ADDRESSES),
                                 schema.conform(voter_addresses, schema.VOTER_ADDRESSES), stats)
    return NormalisedRows(result, first[chosen], len(group_first), new_rows, new_first)


def _fixed_width_words(keys: pa.Array, width: int = 32) -> np.ndarray | None:
    """The bytes of `keys` as (n, width / 8) uint64 words, when every key is a non-null string of
    exactly `width` bytes (address keys are 32 hex digits); None otherwise. Equal words <=> equal
    strings."""
    n = len(keys)
    if n == 0 or keys.null_count or keys.type != pa.string():
        return None
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32, count=n + 1, offset=keys.offset * 4)
    if not (np.diff(offsets) == width).all():
        return None
    data = np.frombuffer(keys.buffers()[2], dtype=np.uint8, count=width * n, offset=int(offsets[0]))
    if data.ctypes.data % 8:
        data = data.copy()  # uint64 views need aligned memory
    return data.view(np.uint64).reshape(n, width // 8)


def group_address_keys(keys: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """group_strings for address keys, hashing their fixed-width bytes with numpy instead."""
    words = _fixed_width_words(keys)
    if words is None:
        return group_strings(keys)
    codes, uniques = pd.factorize(_mix_words(words))
    codes = codes.astype(np.int64)
    first = np.empty(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # reversed: the first occurrence wins
    if not (words[first[codes]] == words).all():  # a collision of the mix: compare strings
        return group_strings(keys)
    return codes, first


def _mix_words(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of uint64 words; any mix will do, callers compare the words."""
    mixed = words[:, 0].copy()
    for i in range(1, words.shape[1]):
        mixed = mixed * np.uint64(0x9E3779B97F4A7C15) ^ words[:, i]
    return mixed


_group_address_keys = group_address_keys  # the name tests and older callers use
