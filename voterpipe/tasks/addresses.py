"""NormaliseAddresses: 03_addresses/<state>/<snapshot>/ addresses.parquet + voter_addresses.parquet."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from voterpipe import config, storage
from voterpipe.addresses.cache import AddressCache
from voterpipe.addresses.normalise import PIECE_COLUMNS, normalise_addresses
from voterpipe.addresses.parse import RULES_VERSION
from voterpipe.tasks.base import SnapshotTask
from voterpipe.tasks.imports import ImportSnapshot

VOTER_COLUMNS = ("voter_id", "res_address_line", *PIECE_COLUMNS, "res_city", "res_state", "res_zip5")


class NormaliseAddresses(SnapshotTask):
    """Pub 28-standardised residential addresses, keyed for householding and geocoding."""

    layer = "addresses"

    def requires(self):
        return ImportSnapshot(state=self.state, snapshot=self.snapshot)

    def build(self, staging: Path) -> dict:
        voters_path = self.input().file("voters.parquet")
        names = set(pq.read_schema(voters_path).names)
        voters = storage.read_parquet(voters_path, columns=[c for c in VOTER_COLUMNS if c in names])
        cache = AddressCache(storage.cache_dir("addresses"), RULES_VERSION)
        result = normalise_addresses(voters, self.state, cache=cache,
                                     processes=config.addresses().processes, progress=self.progress)
        storage.write_parquet(result.addresses, staging / "addresses.parquet")
        storage.write_parquet(result.voter_addresses, staging / "voter_addresses.parquet")
        self.progress(1.0, f"{result.stats['parsed_new']} new strings parsed, "
                           f"{result.stats['cache_hits']} from cache")
        return result.stats
