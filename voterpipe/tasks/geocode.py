"""GeocodeAddresses (04_geocoded): geocode each distinct address_key once, cache first, then the
chosen backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa

from voterpipe import config, quality, schema, storage
from voterpipe.geocode.cache import GeocodeCache, geocode_addresses, match_rates
from voterpipe.tasks.base import SnapshotTask

OFFICIAL_CENSUS_HOST = "geocoding.geo.census.gov"


def census_backend_label(census_url: str) -> str:
    """'census' for the Census Bureau; 'census@host:port' for a compatible server, cached apart."""
    host = urlsplit(census_url).netloc
    return "census" if host in ("", OFFICIAL_CENSUS_HOST) else f"census@{host}"


class GeocodeAddresses(SnapshotTask):
    """04_geocoded/<state>/<snapshot>/geocodes.parquet: one schema.GEOCODES row per address_key."""

    stage_name = "geocoded"

    @property
    def resources(self) -> dict:
        # luigi.cfg [resources] census_api caps how many stages call the Census Geocoder at once
        return {"census_api": 1} if config.geocoder().backend == "census" else {}

    def build(self, staging: Path) -> dict:
        addresses = self.read("addresses").to_pandas()
        settings = config.geocoder()
        self.progress(0.0, f"{len(addresses)} addresses to geocode with {settings.backend}")
        if settings.backend == "census":
            from voterpipe.geocode.census import geocode_with_census

            cache = GeocodeCache(storage.cache_dir("geocodes"), census_backend_label(settings.census_url),
                                 settings.benchmark, settings.vintage)

            def backend(frame: pd.DataFrame) -> pd.DataFrame:
                return geocode_with_census(frame, settings=settings, cache=cache, progress=self.progress)

            geocodes, stats = geocode_addresses(addresses, cache, backend, backend_stores=True,
                                                chunk_rows=None)
        else:
            from voterpipe.geocode.tiger import TigerGeocoder

            engine = TigerGeocoder.load()
            cache = GeocodeCache(storage.cache_dir("geocodes"), "tiger", engine.benchmark, engine.vintage)
            geocodes, stats = geocode_addresses(addresses, cache, engine.geocode, progress=self.progress)
        cache.compact()
        self.write(staging, "geocodes", pa.Table.from_pandas(geocodes, preserve_index=False))
        by_status = addresses.drop_duplicates("address_key").set_index("address_key")["parse_status"]
        self.progress(1.0, f"{stats['cache_misses']} geocoded, {stats['cache_hits']} from cache")
        by_parse_status = match_rates(geocodes, by_status)
        by_county = match_rates(geocodes, self._county_of_addresses(geocodes))
        gates = self.enforce_gates([quality.geocode_match_gate(
            by_parse_status, self.thresholds()["geocode_match_rate"], self.accepted(), by_county)])
        return {
            "backend": cache.backend, "benchmark": cache.benchmark, "vintage": cache.vintage,
            "rows": len(geocodes), **stats,
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
