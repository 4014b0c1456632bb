"""NormaliseAddresses: 03_addresses/<state>/<snapshot>/ addresses + voter_addresses."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from voterpipe import config, quality, storage
from voterpipe.addresses.cache import AddressCache
from voterpipe.addresses.normalise import PIECE_COLUMNS, normalise_addresses
from voterpipe.addresses.parse import RULES_VERSION
from voterpipe.tasks.base import SnapshotTask

VOTER_COLUMNS = ("voter_id", "res_address_line", *PIECE_COLUMNS, "res_city", "res_state", "res_zip5")


class NormaliseAddresses(SnapshotTask):
    """Pub 28-standardised residential addresses, keyed for householding and geocoding."""

    stage_name = "addresses"

    def build(self, staging: Path) -> dict:
        names = set(pq.read_schema(self.input_path("voters")).names)
        voters = self.read("voters", columns=[c for c in VOTER_COLUMNS if c in names])
        cache = AddressCache(storage.cache_dir("addresses"), RULES_VERSION)
        result = normalise_addresses(voters, self.state, cache=cache,
                                     processes=config.addresses().processes, progress=self.progress)
        self.write(staging, "addresses", result.addresses)
        self.write(staging, "voter_addresses", result.voter_addresses)
        self.progress(1.0, f"{result.stats['parsed_new']} new strings parsed, "
                           f"{result.stats['cache_hits']} from cache")
        stats = dict(result.stats)
        stats["gates"] = self.enforce_gates([quality.address_parse_gate(
            stats.get("voters_by_parse_status", {}), self.thresholds()["address_parse_rate"], self.accepted())])
        return stats
