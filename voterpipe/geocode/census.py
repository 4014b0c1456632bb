"""The Census Geocoder backend: batches through the censusgeocode client against [geocoder] census_url,
with timeouts, bounded retries, id checks, a Tie/No_Match recheck and one cache part per batch.
This module runs the batches; census_batch_file.py, census_sender.py, census_client.py and
census_geographies.py hold the parts.

What comes from censusgeocode 0.5.3 and what is ours, and why:
- CensusGeocode (subclassed, its `_url` template set from census_url) builds every URL, carries
  benchmark/vintage, names the batch columns (`batchfields`) and answers single-address JSON calls
  (`onelineaddress`), where its parsing is sound.
- The batch POST is sent on our own requests.Session with the same multipart form censusgeocode
  builds (addressFile=batch.csv text/plain, benchmark, vintage). censusgeocode's addressbatch()
  cannot be used for it: it posts with no timeout by default, never looks at the HTTP status,
  turns an HTML error page into one junk row, and folds Tie into no match (reference §5.3).
- The batch CSV is parsed (census_batch_file.py) with fixed field names, short rows allowed, Tie kept distinct,
  and every id sent must come back exactly once or the whole batch is retried.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from voterpipe import schema
from voterpipe.geocode.census_batch_file import request_rows, sendable_mask
from voterpipe.geocode.census_client import BACKEND, GEOCODE_COLUMNS
from voterpipe.geocode.census_geographies import known_block_districts, tiger_block_districts
from voterpipe.geocode.census_sender import (
    RECHECK_BATCH_ROWS, CensusBatchSender, CensusGeocoderError, CensusRunStats)

log = logging.getLogger(__name__)

BATCH_LIMIT = 10_000  # records per file accepted by the Census batch endpoint


def _to_geocodes(frame: pd.DataFrame) -> pd.DataFrame:
    table = pa.Table.from_pandas(frame.reindex(columns=GEOCODE_COLUMNS), preserve_index=False)
    return schema.conform(table, schema.GEOCODES).to_pandas()


def _fan_out(answers: pd.DataFrame, key_map: pd.DataFrame) -> pd.DataFrame:
    """Request-level answers -> one GEOCODES row per address_key."""
    joined = key_map.merge(answers, left_on="request_id", right_on="id", how="inner")
    joined["backend"] = BACKEND
    return _to_geocodes(joined)


def clamp_batch_size(batch_size: int) -> int:
    return max(1, min(int(batch_size), BATCH_LIMIT))


def geocode_with_census(addresses: pd.DataFrame, settings: Any, cache: Any, *,
                        progress: Callable[[float, str], None] | None = None,
                        stats: CensusRunStats | None = None,
                        backoff_seconds: float = 1.0, backoff_cap_seconds: float = 60.0,
                        recheck_batch_rows: int = RECHECK_BATCH_ROWS,
                        districts: bool | None = None,
                        tiger_dir: Path | None = None) -> pd.DataFrame:
    """GEOCODES rows (backend 'census') for every address_key of `addresses` (schema.ADDRESSES).

    Keys already in `cache` are not sent again. Each finished batch goes to cache.store() as soon
    as it completes, so a crash loses only the batches in flight. Addresses without a usable street
    get status 'not_sent'. Raises CensusGeocoderError when a batch exhausts its retries (after
    storing every batch that did finish).

    CD/SLDU/SLDL: the batch answer carries only state to block. Where TIGER data is imported
    (`tiger_dir`, default storage.cache_dir('tiger')), the block GEOID is joined to its FACES
    table, with no request. For other blocks, `districts` (default [geocoder] census_districts)
    adds them with one single-address JSON lookup per distinct block.
    """
    if districts is None:
        districts = bool(getattr(settings, "census_districts", False))
    stats = stats if stats is not None else CensusRunStats()
    addresses = addresses.drop_duplicates("address_key")
    keys = addresses["address_key"]
    cached = cache.lookup(keys)
    stats.cached_keys = len(cached)
    pending = addresses[~keys.isin(set(cached["address_key"]))]
    mask = sendable_mask(pending).to_numpy()
    to_send, not_sent = pending[mask], pending[~mask]
    not_sent_rows = _to_geocodes(pd.DataFrame({"address_key": not_sent["address_key"].to_numpy(),
                                               "status": "not_sent", "backend": BACKEND}))
    frames = [cached, not_sent_rows]

    if len(to_send):
        rows, key_map = request_rows(to_send)
        size = clamp_batch_size(settings.batch_size)
        batches = [rows.iloc[i:i + size] for i in range(0, len(rows), size)]
        # Request ids are 1..n in row order, so a key's batch is (id - 1) // size.
        batch_of_key = (key_map["request_id"].astype(int).to_numpy() - 1) // size
        keys_by_batch = dict(tuple(key_map.groupby(batch_of_key, sort=False)))
        in_flight = max(1, int(settings.batches_in_flight))
        sender = CensusBatchSender(settings, stats, backoff_seconds, backoff_cap_seconds,
                                   recheck_batch_rows, districts)
        sender.offline_districts = tiger_block_districts(tiger_dir)
        if districts:
            sender.block_districts.update(known_block_districts(cached))
        log.info("census geocoding: %d keys cached, %d not sent, %d distinct addresses in %d "
                 "batches of <= %d, %d in flight", len(cached), len(not_sent), len(rows),
                 len(batches), size, in_flight)
        frames.extend(_run_batches(batches, keys_by_batch, sender, cache, in_flight, progress))
        log.info("census geocoding done: %s", stats.as_dict())
    result = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else _to_geocodes(pd.DataFrame(columns=GEOCODE_COLUMNS))
    order = pd.Series(np.arange(len(addresses)), index=addresses["address_key"].to_numpy())
    result = result.iloc[np.argsort(order.reindex(result["address_key"]).to_numpy(), kind="stable")]
    return _to_geocodes(result.reset_index(drop=True))


def _run_batches(batches: list[pd.DataFrame], keys_by_batch: dict[int, pd.DataFrame],
                 sender: CensusBatchSender,
                 cache: Any, in_flight: int, progress: Callable[[float, str], None] | None
                 ) -> list[pd.DataFrame]:
    """Run batches `in_flight` at a time; store each in the cache the moment it finishes."""
    done_frames: list[pd.DataFrame] = []
    failure: BaseException | None = None
    next_batch = 0
    running: dict[Future, int] = {}
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="census-batch") as pool:
        try:
            while running or (next_batch < len(batches) and failure is None):
                # Submit lazily so a failure stops new batches and a crash leaves little in flight.
                while failure is None and next_batch < len(batches) and len(running) < in_flight:
                    label = f"{next_batch + 1}/{len(batches)}"
                    running[pool.submit(sender.geocode_batch, batches[next_batch], label)] = next_batch
                    next_batch += 1
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    try:
                        answers = future.result()
                    except BaseException as exc:  # noqa: BLE001 - re-raised after in-flight batches land
                        failure = failure or exc
                        continue
                    frame = _fan_out(answers, keys_by_batch[index])
                    cache.store(frame)
                    done_frames.append(frame)
                    if progress is not None:
                        rows = sum(len(f) for f in done_frames)
                        matched = sum(int((f["status"] == "match").sum()) for f in done_frames)
                        progress(len(done_frames) / len(batches),
                                 f"census: {len(done_frames)}/{len(batches)} batches geocoded, "
                                 f"{matched / max(rows, 1):.0%} matched")
        finally:
            sender.close()
    if failure is not None:
        if isinstance(failure, CensusGeocoderError):
            raise failure
        raise CensusGeocoderError(f"census batch failed: {failure!r}") from failure
    return done_frames
