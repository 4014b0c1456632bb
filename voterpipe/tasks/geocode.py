"""GeocodeAddresses (04_geocoded): geocode each distinct address_key once, cache first, then the
chosen backend; with [scale] partitions = K > 1, the merge of K GeocodeAddressesPart tasks split
by a hash of address_key."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe import config, partitioning, quality, schema, storage
from voterpipe.geocode.cache import GeocodeCache, geocode_addresses, match_rates
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


def geocode_unique(task, addresses: pd.DataFrame) -> tuple[pd.DataFrame, dict, GeocodeCache]:
    """geocode_addresses with the configured backend and its cache."""
    settings = config.geocoder()
    task.progress(0.0, f"{len(addresses)} addresses to geocode with {settings.backend}")
    if settings.backend == "census":
        from voterpipe.geocode.census import geocode_with_census

        settings = config.geocoder(batches_in_flight=census_batches_in_flight())
        cache = GeocodeCache(storage.cache_dir("geocodes"), census_backend_label(settings.census_url),
                             settings.benchmark, settings.vintage)

        def backend(frame: pd.DataFrame) -> pd.DataFrame:
            return geocode_with_census(frame, settings=settings, cache=cache, progress=task.progress)

        geocodes, stats = geocode_addresses(addresses, cache, backend, backend_stores=True, chunk_rows=None)
    else:
        from voterpipe.geocode.tiger import TigerGeocoder

        engine = TigerGeocoder.load()
        cache = GeocodeCache(storage.cache_dir("geocodes"), "tiger", engine.benchmark, engine.vintage)
        geocodes, stats = geocode_addresses(addresses, cache, engine.geocode, progress=task.progress)
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
        addresses = self.read("addresses").to_pandas()
        geocodes, stats, cache = geocode_unique(self, addresses)
        cache.compact()
        labels = {"backend": cache.backend, "benchmark": cache.benchmark, "vintage": cache.vintage}
        return self.summarise(staging, addresses, geocodes, stats, labels)

    def after_partitions(self) -> dict:
        return {"compact_cache": CompactCaches(state=self.state, snapshot=self.snapshot, stage="geocoded")}

    def merge(self, staging: Path, parts: list) -> dict:
        addresses = self.read("addresses").to_pandas()
        table = pa.concat_tables(self.read_parts(parts, "geocodes_part"))
        geocodes = table.to_pandas().sort_values("address_key", kind="stable").reset_index(drop=True)
        manifests = [part.manifest() for part in parts]
        stats = partitioning.sum_counts(manifests, SUMMED_STATS)
        labels = {name: manifests[0][name] for name in ("backend", "benchmark", "vintage")}
        return dict(self.summarise(staging, addresses, geocodes, stats, labels), partitions=len(parts))

    def summarise(self, staging: Path, addresses: pd.DataFrame, geocodes: pd.DataFrame, stats: dict,
                  labels: dict) -> dict:
        """Write geocodes; the manifest body with match rates and the quality gate."""
        self.write(staging, "geocodes", pa.Table.from_pandas(geocodes, preserve_index=False))
        by_status = addresses.drop_duplicates("address_key").set_index("address_key")["parse_status"]
        self.progress(1.0, f"{stats['cache_misses']} geocoded, {stats['cache_hits']} from cache")
        by_parse_status = match_rates(geocodes, by_status)
        by_county = match_rates(geocodes, self._county_of_addresses(geocodes))
        gates = self.enforce_gates([quality.geocode_match_gate(
            by_parse_status, self.thresholds()["geocode_match_rate"], self.accepted(), by_county)])
        return {
            **labels, "rows": len(geocodes), **stats,
            "status_counts": {s: int((geocodes["status"] == s).sum()) for s in schema.GEOCODE_STATUSES},
            "match_rate_by_parse_status": by_parse_status,
            "match_rate_by_county": by_county,
            "gates": gates,
        }

    def _county_of_addresses(self, geocodes: pd.DataFrame) -> pd.Series:
        """address_key -> the voter-file county of its voters; else the matched county FIPS."""
        fallback = geocodes.set_index("address_key")["county_fips"]
        links = self.read("voter_addresses", columns=["voter_id", "address_key"]).to_pandas()
        voters = self.read("voters", columns=["voter_id", "county_code"]).to_pandas()
        county = links.dropna(subset=["address_key"]).merge(voters, on="voter_id", how="inner")
        county = county.drop_duplicates("address_key").set_index("address_key")["county_code"]
        return county.reindex(fallback.index).fillna(fallback).fillna("unknown")


class GeocodeAddressesPart(CensusBatches, PartitionTask):
    """The address_keys whose hash falls in this partition; stores to the shared cache without
    compacting it (CompactCaches does, once every partition is done)."""

    stage_name = "geocoded_part"

    def build(self, staging: Path) -> dict:
        addresses = self.read("addresses")
        addresses = addresses.take(pa.array(self.partition_rows(addresses["address_key"])))
        addresses = addresses.filter(pc.is_valid(addresses["address_key"])).to_pandas()
        geocodes, stats, cache = geocode_unique(self, addresses)
        self.write(staging, "geocodes_part", pa.Table.from_pandas(geocodes, preserve_index=False))
        self.progress(1.0, f"partition {self.partition}: {stats['cache_misses']} geocoded, "
                           f"{stats['cache_hits']} from cache")
        return {"backend": cache.backend, "benchmark": cache.benchmark, "vintage": cache.vintage,
                "rows": len(geocodes), **stats, "partition": self.partition, "partitions": self.partitions}
