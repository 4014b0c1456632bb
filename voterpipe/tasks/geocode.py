"""GeocodeAddresses (04_geocoded): geocode each distinct address_key once, cache first, then the
chosen backend; with [scale] partitions = K > 1, the merge of K GeocodeAddressesPart tasks split
by a hash of address_key."""

from __future__ import annotations

from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import luigi
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import config, partitioning, quality, schema, storage
from voterpipe.addresses.spill import spill_directory
from voterpipe.geocode.bucketed import NotAligned, geocode_in_buckets, spill_counties
from voterpipe.geocode.cache import GeocodeCache, geocode_addresses_table, match_rates_aligned
from voterpipe.tasks.maintenance import CompactCaches
from voterpipe.tasks.partitions import PartitionedStage, PartitionTask

OFFICIAL_CENSUS_HOST = "geocoding.geo.census.gov"
CENSUS_BATCHES = "census_batches"  # the [resources] name capping Census batches in flight, all workers
SUMMED_STATS = ("addresses", "sendable", "not_sent", "cache_hits", "cache_misses")


def census_backend_label(census_url: str) -> str:
    """'census' for the Census Bureau; 'census@host:port' for a compatible server, cached apart."""
    host = urlsplit(census_url).netloc
    return "census" if host in ("", OFFICIAL_CENSUS_HOST) else f"census@{host}"


def census_batches_in_flight() -> int:
    """[geocoder] batches_in_flight, at most [resources] census_batches (Luigi's capacity for an
    undeclared resource is 1): a task asking more than the scheduler's capacity would never run."""
    capacity = luigi.configuration.get_config().getint("resources", CENSUS_BATCHES, 1)
    return max(1, min(int(config.geocoder().batches_in_flight), capacity))


class CensusBatches:
    """Mixin: a task calling the Census Geocoder holds one [resources] census_batches unit per
    batch it keeps in flight, so luigid caps the batches of all workers together."""

    @property
    def resources(self) -> dict:
        return {CENSUS_BATCHES: census_batches_in_flight()} if config.geocoder().backend == "census" else {}


def geocoder(task) -> tuple[Callable, GeocodeCache, dict]:
    """(backend, its cache, geocode_addresses_table options) for the configured backend."""
    settings = config.geocoder()
    if settings.backend == "census":
        from voterpipe.geocode.census import geocode_with_census

        settings = config.geocoder(batches_in_flight=census_batches_in_flight())
        cache = GeocodeCache(storage.cache_dir("geocodes"), census_backend_label(settings.census_url),
                             settings.benchmark, settings.vintage)

        def backend(frame: pd.DataFrame) -> pd.DataFrame:
            return geocode_with_census(frame, settings=settings, cache=cache, progress=task.progress)

        return backend, cache, {"backend_stores": True, "chunk_rows": None}
    from voterpipe.geocode.tiger import TigerGeocoder

    engine = TigerGeocoder.load()
    cache = GeocodeCache(storage.cache_dir("geocodes"), "tiger", engine.benchmark, engine.vintage)
    return engine.geocode, cache, {}


def geocode_unique(task, addresses: pa.Table) -> tuple[pa.Table, dict, GeocodeCache]:
    """geocode_addresses_table with the configured backend and its cache."""
    task.progress(0.0, f"{len(addresses)} addresses to geocode with {config.geocoder().backend}")
    backend, cache, options = geocoder(task)
    options.setdefault("progress", task.progress)
    geocodes, stats = geocode_addresses_table(addresses, cache, backend, **options)
    return geocodes, stats, cache


class GeocodeAddresses(CensusBatches, PartitionedStage):
    """04_geocoded/<state>/<snapshot>/geocodes.parquet: one schema.GEOCODES row per address_key."""

    stage_name = "geocoded"
    part_family = "GeocodeAddressesPart"
    merge_inputs = ("addresses", "canonical")

    @property
    def resources(self) -> dict:
        return super().resources if self.partition_count() == 1 else {}  # the partitions call the backend

    def build_whole(self, staging: Path) -> dict:
        """Key range by key range (geocode.bucketed), so memory does not grow with the snapshot."""
        self.progress(0.0, f"{pq.read_metadata(self.input_path('addresses')).num_rows} addresses to geocode "
                           f"with {config.geocoder().backend}")
        backend, cache, options = geocoder(self)
        output = Path(staging) / self.stage.dataset("geocodes").file

        def counties(spills, bucket_of_prefix) -> None:
            spill_counties(self.input_path("voter_addresses"), self.input_path("voters"), spills, bucket_of_prefix)

        try:
            with spill_directory(storage.cache_dir("spill")) as spill_dir:
                done = geocode_in_buckets(self.input_path("addresses"), cache, backend, output,
                                          storage.parquet_writer, spill_dir, counties,
                                          progress=self.progress, **options)
        except NotAligned:  # voter_addresses not in voters.parquet order: the whole-table way
            return self.build_in_memory(staging)
        cache.compact()
        stats = done["stats"]
        self.progress(1.0, f"{stats['cache_misses']} geocoded, {stats['cache_hits']} from cache")
        by_parse_status, by_county = done["match_rate_by_parse_status"], done["match_rate_by_county"]
        gates = self.enforce_gates([quality.geocode_match_gate(
            by_parse_status, self.thresholds()["geocode_match_rate"], self.accepted(), by_county)])
        return {"backend": cache.backend, "benchmark": cache.benchmark, "vintage": cache.vintage,
                "rows": done["rows"], **stats, "status_counts": done["status_counts"],
                "match_rate_by_parse_status": by_parse_status, "match_rate_by_county": by_county, "gates": gates}

    def build_in_memory(self, staging: Path) -> dict:
        addresses = self.read("addresses")
        geocodes, stats, cache = geocode_unique(self, addresses)
        cache.compact()
        labels = {"backend": cache.backend, "benchmark": cache.benchmark, "vintage": cache.vintage}
        return self.summarise(staging, addresses, geocodes, stats, labels)

    def after_partitions(self) -> dict:
        return {"compact_cache": CompactCaches(state=self.state, snapshot=self.snapshot, stage="geocoded")}

    def merge(self, staging: Path, parts: list) -> dict:
        addresses = self.read("addresses", columns=["address_key", "parse_status"])
        table = pa.concat_tables(self.read_parts(parts, "geocodes_part"))
        geocodes = table.take(pc.sort_indices(table, [("address_key", "ascending")]))
        manifests = [part.manifest() for part in parts]
        stats = partitioning.sum_counts(manifests, SUMMED_STATS)
        labels = {name: manifests[0][name] for name in ("backend", "benchmark", "vintage")}
        return dict(self.summarise(staging, addresses, geocodes, stats, labels), partitions=len(parts))

    def summarise(self, staging: Path, addresses: pa.Table, geocodes: pa.Table, stats: dict,
                  labels: dict) -> dict:
        """Write geocodes; the manifest body with match rates and the quality gate."""
        self.write(staging, "geocodes", geocodes)
        # each geocode's parse status: that of its address_key's first row in addresses
        keys = addresses.column("address_key").combine_chunks()
        first = pc.index_in(geocodes.column("address_key"), value_set=keys, skip_nulls=True)
        parse_status = addresses.column("parse_status").combine_chunks().take(first)
        self.progress(1.0, f"{stats['cache_misses']} geocoded, {stats['cache_hits']} from cache")
        statuses = geocodes.column("status").to_numpy()
        by_parse_status = match_rates_aligned(statuses, parse_status.to_numpy(zero_copy_only=False))
        by_county = match_rates_aligned(statuses, self._county_of_addresses(geocodes))
        gates = self.enforce_gates([quality.geocode_match_gate(
            by_parse_status, self.thresholds()["geocode_match_rate"], self.accepted(), by_county)])
        counts = pc.value_counts(geocodes.column("status")).to_pylist()
        found = {c["values"]: c["counts"] for c in counts}
        return {
            **labels, "rows": geocodes.num_rows, **stats,
            "status_counts": {s: int(found.get(s, 0)) for s in schema.GEOCODE_STATUSES},
            "match_rate_by_parse_status": by_parse_status,
            "match_rate_by_county": by_county,
            "gates": gates,
        }

    def _county_of_addresses(self, geocodes: pa.Table) -> np.ndarray:
        """Each geocode's county: the voter-file county of its address's first voter
        (voter_addresses order); else the matched county FIPS; else 'unknown'."""
        keys = geocodes.column("address_key").combine_chunks()
        fallback = geocodes.column("county_fips").combine_chunks()
        links = self.read("voter_addresses", columns=["voter_id", "address_key"])
        voters = self.read("voters", columns=["voter_id", "county_code"])
        if links.column("voter_id").equals(voters.column("voter_id")):
            # NormaliseAddresses keeps voters.parquet order: each link's county is its row's
            first = pc.index_in(keys, value_set=links.column("address_key").combine_chunks(), skip_nulls=True)
            county = voters.column("county_code").combine_chunks().take(first)
        else:
            frame = links.to_pandas().dropna(subset=["address_key"]).merge(
                voters.to_pandas(), on="voter_id", how="inner").drop_duplicates("address_key")
            county = frame.set_index("address_key")["county_code"].reindex(
                keys.to_numpy(zero_copy_only=False))
            county = pa.array(county.to_numpy(dtype=object), pa.string(), from_pandas=True)
        county = pc.fill_null(pc.coalesce(county, fallback), "unknown")
        return county.to_numpy(zero_copy_only=False)


class GeocodeAddressesPart(CensusBatches, PartitionTask):
    """The address_keys whose hash falls in this partition; stores to the shared cache without
    compacting it (CompactCaches does, once every partition is done)."""

    stage_name = "geocoded_part"

    def build(self, staging: Path) -> dict:
        addresses = self.read("addresses")
        addresses = addresses.take(pa.array(self.partition_rows(addresses["address_key"])))
        addresses = addresses.filter(pc.is_valid(addresses["address_key"]))
        geocodes, stats, cache = geocode_unique(self, addresses)
        self.write(staging, "geocodes_part", geocodes)
        self.progress(1.0, f"partition {self.partition}: {stats['cache_misses']} geocoded, "
                           f"{stats['cache_hits']} from cache")
        return {"backend": cache.backend, "benchmark": cache.benchmark, "vintage": cache.vintage,
                "rows": geocodes.num_rows, **stats, "partition": self.partition, "partitions": self.partitions}
