"""Census backend throughput against the local Census-compatible service with realistic latency.

The service sleeps `BASE_LATENCY + PER_ROW_LATENCY * rows` before each batch answer (a 1,000-row
batch takes ~2.8 s, in line with reports of the live service), so the numbers show how the
backend overlaps batches, not how fast this machine geocodes. Three measurements:
  1. batches_in_flight = 1, 2, 4, 8 at a fixed batch size (ratio against 1 in flight);
  2. batch size 250 / 500 / 1000 / 2500 at 4 in flight, with a seeded 20 % of requests failing
     with a 500 after the full latency, as the live service does now and then;
  3. censusgeocode's own addressbatch(), sequential, as the baseline for one batch in flight.
Run: .venv/bin/python -m bench.bench_census
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import record
from voterpipe.config import geocoder
from voterpipe.geocode.cache import GeocodeCache
from voterpipe.geocode.census import geocode_with_census
from voterpipe.geocode.census_batch_file import encode_batch_csv, request_rows
from voterpipe.geocode.census_client import ConfiguredCensusGeocode
from voterpipe.geocode.census_sender import CensusRunStats
from voterpipe.geocode.service import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from geocoder_faults import FaultPlan  # noqa: E402
from geocoder_server import ADDRESS_COLUMNS, SPEC  # noqa: E402

BASE_LATENCY = 0.3
PER_ROW_LATENCY = 0.0025
ADDRESSES = 8000
IN_FLIGHT_BATCH_SIZE = 500
FAILURE_SHARE = 0.2


def _engine_and_addresses(tmp: Path):
    from voterpipe.geocode.tiger import TigerGeocoder, import_tiger_dir
    from voterpipe.synth.county import build_county
    from voterpipe.synth.tiger_files import write_tiger_files

    network = build_county(SPEC, ADDRESSES + 500, seed=3)
    write_tiger_files(network, tmp / "files")
    import_tiger_dir(tmp / "files", root=tmp / "data")
    engine = TigerGeocoder.load(tmp / "data" / "cache" / "tiger")
    houses = network.buildings.iloc[:ADDRESSES]
    frame = pd.DataFrame({c: "" for c in ADDRESS_COLUMNS}, index=range(len(houses)))
    for column in ("house_number", "pre_dir", "street_name", "street_type", "post_dir", "city", "zip5"):
        frame[column] = houses[column].to_numpy()
    frame["state"] = "NC"
    frame["parse_status"] = "ok"
    frame["address_key"] = [f"b{n}" for n in range(len(frame))]
    return engine, frame


def _run(engine, addresses, tmp: Path, name: str, batch_size: int, in_flight: int,
         faults: FaultPlan) -> dict:
    server = make_server("127.0.0.1", 0, engine, faults).start()
    try:
        settings = geocoder(census_url=server.url, batch_size=batch_size, batches_in_flight=in_flight,
                            timeout_seconds=120, max_retries=6)
        cache = GeocodeCache(tmp / "cache" / name, "census", settings.benchmark, settings.vintage)
        stats = CensusRunStats()
        start = time.perf_counter()
        result = geocode_with_census(addresses, settings, cache, stats=stats, backoff_seconds=0.2,
                                     backoff_cap_seconds=2.0)
        seconds = time.perf_counter() - start
    finally:
        server.stop()
    assert len(result) == len(addresses) and result["status"].isin(["match", "no_match", "tie"]).all()
    return {"batch_size": batch_size, "batches_in_flight": in_flight, "seconds": round(seconds, 2),
            "rows_per_second": round(len(addresses) / seconds, 1), "requests": stats.requests,
            "retries": stats.retries, "match_rate": round(float((result["status"] == "match").mean()), 4)}


def _censusgeocode_sequential(engine, addresses, batch_size: int) -> dict:
    server = make_server("127.0.0.1", 0, engine, FaultPlan(latency_seconds=BASE_LATENCY,
                                                           latency_per_row=PER_ROW_LATENCY)).start()
    try:
        client = ConfiguredCensusGeocode(server.url)
        rows, _ = request_rows(addresses)
        start = time.perf_counter()
        answered = 0
        for first in range(0, len(rows), batch_size):
            body = encode_batch_csv(rows.iloc[first:first + batch_size])
            answered += len(client.addressbatch(io.BytesIO(body), timeout=120))
        seconds = time.perf_counter() - start
    finally:
        server.stop()
    return {"batch_size": batch_size, "seconds": round(seconds, 2), "rows": answered,
            "rows_per_second": round(len(rows) / seconds, 1)}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-census-") as tmp_name:
        tmp = Path(tmp_name)
        engine, addresses = _engine_and_addresses(tmp)
        latency = FaultPlan(latency_seconds=BASE_LATENCY, latency_per_row=PER_ROW_LATENCY)
        baseline = _censusgeocode_sequential(engine, addresses, IN_FLIGHT_BATCH_SIZE)
        scaling = [_run(engine, addresses, tmp, f"f{n}", IN_FLIGHT_BATCH_SIZE, n, latency)
                   for n in (1, 2, 4, 8)]
        one = scaling[0]["seconds"]
        for entry in scaling:
            entry["speedup_vs_1_in_flight"] = round(one / entry["seconds"], 2)
        # The same seeded 20 % of requests fail at every batch size: a failure costs a whole batch.
        draws = np.random.default_rng(7).random(2000)
        failing = ["http_500" if d < FAILURE_SHARE else None for d in draws]
        sizes = []
        for size in (250, 500, 1000, 2500):
            plan = FaultPlan(schedule=failing, latency_seconds=BASE_LATENCY,
                             latency_per_row=PER_ROW_LATENCY)
            sizes.append(_run(engine, addresses, tmp, f"s{size}", size, 4, plan))
        record("geocode_census", {
            "addresses": len(addresses),
            "latency_model": {"base_seconds": BASE_LATENCY, "per_row_seconds": PER_ROW_LATENCY,
                              "seconds_for_1000_rows": BASE_LATENCY + 1000 * PER_ROW_LATENCY},
            "baseline_censusgeocode_addressbatch_sequential": baseline,
            "ours_1_in_flight_vs_censusgeocode": round(baseline["seconds"] / one, 2),
            "batches_in_flight_scaling": scaling,
            "batch_size_with_20pct_of_requests_failing_4_in_flight": sizes,
            "rows_per_second_median_of_scaling": float(np.median([s["rows_per_second"] for s in scaling])),
        })


if __name__ == "__main__":
    main()
