"""The shared address and geocode caches under many workers: processes (not threads) appending
different entries at once while compactions race them lose nothing and count nothing twice."""

from __future__ import annotations

import multiprocessing
import time

import pyarrow as pa
import pytest

from voterpipe.addresses.cache import CACHE_SCHEMA, AddressCache
from voterpipe.cache_lock import compaction_lock
from voterpipe.geocode.cache import GeocodeCache

WRITERS = 2
BATCHES = 30
ROWS = 25
CONTEXT = multiprocessing.get_context("spawn")  # fresh interpreters, like workers on other machines


def _address_rows(writer: int, batch: int) -> pa.Table:
    keys = [f"L\x1f{writer}-{batch}-{i} MAIN ST\x1f27601" for i in range(ROWS)]
    columns = {name: [f"{name}-{k}" for k in keys] for name in CACHE_SCHEMA.names[1:]}
    return pa.table({"cache_key": keys, **columns}, schema=CACHE_SCHEMA)


def _geocode_rows(writer: int, batch: int) -> pa.Table:
    keys = [f"{writer:02d}{batch:04d}{i:026d}" for i in range(ROWS)]
    return pa.table({"address_key": keys, "status": ["match"] * ROWS, "lon": [-78.6] * ROWS,
                     "lat": [35.7] * ROWS, "backend": ["tiger"] * ROWS})


def _open(kind: str, root: str):
    if kind == "addresses":
        return AddressCache(root, "v", compact_after=3)  # appends compact inline too: they race
    return GeocodeCache(root, "tiger", "bench", "vintage")


def _write(kind: str, root: str, writer: int, start, failures) -> None:
    """Append BATCHES batches; after each, every entry this writer added so far must be readable."""
    start.wait()
    try:
        for batch in range(BATCHES):
            cache = _open(kind, root)
            if kind == "addresses":
                cache.append(_address_rows(writer, batch))
                keys = pa.concat_arrays([_address_rows(writer, b)["cache_key"].combine_chunks()
                                         for b in range(batch + 1)])
                missing = int((_open(kind, root).positions(keys) < 0).sum())
            else:
                cache.store(_geocode_rows(writer, batch))
                keys = [k for b in range(batch + 1) for k in _geocode_rows(writer, b)["address_key"].to_pylist()]
                missing = len(keys) - len(_open(kind, root).lookup(keys))
            if missing:
                failures.put(f"writer {writer} batch {batch}: {missing} of its entries unreadable")
    except Exception as exc:  # reported to the test, which fails with it
        failures.put(f"writer {writer}: {exc!r}")


def _compact(kind: str, root: str, start, stop, counts) -> None:
    start.wait()
    merged = 0
    while not stop.is_set():
        merged += _open(kind, root).compact()
        time.sleep(0.005)
    counts.put(merged)


@pytest.mark.parametrize("kind", ["addresses", "geocodes"])
def test_two_writers_and_a_racing_compaction_lose_nothing(tmp_path, kind):
    root = str(tmp_path)
    _open(kind, root)  # the directory exists before the race
    start, stop = CONTEXT.Barrier(WRITERS + 1), CONTEXT.Event()
    failures, counts = CONTEXT.Queue(), CONTEXT.Queue()
    writers = [CONTEXT.Process(target=_write, args=(kind, root, w, start, failures)) for w in range(WRITERS)]
    compactor = CONTEXT.Process(target=_compact, args=(kind, root, start, stop, counts))
    for process in (*writers, compactor):
        process.start()
    for process in writers:
        process.join(timeout=120)
    stop.set()
    compactor.join(timeout=60)
    assert all(p.exitcode == 0 for p in (*writers, compactor))
    problems = []
    while not failures.empty():
        problems.append(failures.get())
    assert problems == []
    assert counts.get(timeout=5) > 0  # the compactor really merged parts while the writers wrote

    cache = _open(kind, root)
    total = WRITERS * BATCHES * ROWS
    assert len(cache) == total  # every entry once: nothing lost, nothing counted twice
    if kind == "addresses":
        keys = pa.concat_arrays([_address_rows(w, b)["cache_key"].combine_chunks()
                                 for w in range(WRITERS) for b in range(BATCHES)])
        assert (cache.positions(keys) >= 0).all()
        assert len(pa.compute.unique(cache.table()["cache_key"])) == total
    else:
        keys = [k for w in range(WRITERS) for b in range(BATCHES)
                for k in _geocode_rows(w, b)["address_key"].to_pylist()]
        assert sorted(cache.lookup(keys)["address_key"]) == sorted(keys)
    cache.compact()
    assert cache.parts() == 1 and len(_open(kind, root)) == total


def test_a_compaction_waits_for_or_skips_one_in_progress(tmp_path):
    cache = AddressCache(tmp_path, "v", compact_after=None)
    for batch in range(3):
        cache.append(_address_rows(0, batch))
    with compaction_lock(cache.directory):
        # another process holds the lock: this one skips rather than merge the same parts twice
        held = CONTEXT.Process(target=_compact_once, args=(str(tmp_path),))
        held.start()
        held.join(timeout=60)
        assert held.exitcode == 0
        assert cache.parts() == 3
    assert AddressCache(tmp_path, "v").compact() == 3 and cache.parts() == 1


def _compact_once(root: str) -> None:
    if AddressCache(root, "v").compact() != 0:
        raise SystemExit(1)


def test_overlapping_compactions_from_two_machines_count_each_entry_once(tmp_path):
    # The lock is per machine: two machines sharing the cache may both merge the same parts.
    import json

    from voterpipe.addresses import cache as cache_module

    cache = AddressCache(tmp_path, "v", compact_after=None)
    for batch in range(2):
        cache.append(_address_rows(0, batch))
    parts = sorted(cache.directory.iterdir())
    merged = pa.concat_tables([cache_module._read_part(p) for p in parts])
    for machine in ("a", "b"):
        meta = {b"voterpipe.replaces": json.dumps([p.name for p in parts]).encode()}
        cache_module._write_part(merged.replace_schema_metadata(meta), cache.directory / f"compact-{machine}.arrow")
    for part in parts:
        part.unlink()
    assert len(AddressCache(tmp_path, "v")) == 2 * ROWS
    assert AddressCache(tmp_path, "v").compact() == 2
    reopened = AddressCache(tmp_path, "v")
    assert reopened.parts() == 1 and len(reopened) == 2 * ROWS
