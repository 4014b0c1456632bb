"""NormaliseAddresses: 03_addresses/<state>/<snapshot>/ addresses + voter_addresses; with
[scale] partitions = K > 1, the merge of K NormaliseAddressesPart tasks, split by raw address string."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voterpipe import config, partitioning, quality, storage
from voterpipe.addresses.bucketed import normalise_voter_file
from voterpipe.addresses.cache import AddressCache
from voterpipe.addresses.spill import spill_directory
from voterpipe.addresses.normalise import PIECE_COLUMNS, normalise_addresses, voter_cache_keys
from voterpipe.addresses.parse import RULES_VERSION
from voterpipe.tasks.maintenance import CompactCaches
from voterpipe.tasks.partitions import PartitionedStage, PartitionTask

VOTER_COLUMNS = ("voter_id", "res_address_line", *PIECE_COLUMNS, "res_city", "res_state", "res_zip5")
SUMMED_STATS = ("voters", "unique_address_strings", "parsed_new", "cache_hits", "voters_by_parse_status",
                "address_strings_by_parse_status")


def read_voter_addresses(task) -> pa.Table:
    names = set(pq.read_schema(task.input_path("voters")).names)
    return task.read("voters", columns=[c for c in VOTER_COLUMNS if c in names])


class NormaliseAddresses(PartitionedStage):
    """Pub 28-standardised residential addresses, keyed for householding and geocoding."""

    stage_name = "addresses"
    part_family = "NormaliseAddressesPart"
    merge_inputs = ("canonical",)

    def build_whole(self, staging: Path) -> dict:
        """Bucket by bucket (addresses.bucketed), so memory does not grow with the voter file."""
        path = self.input_path("voters")
        names = set(pq.read_schema(path).names)
        cache = AddressCache(storage.cache_dir("addresses"), RULES_VERSION)
        outputs = {name: Path(staging) / self.stage.dataset(name).file for name in ("addresses", "voter_addresses")}
        with spill_directory(storage.cache_dir("spill")) as spill_dir:
            stats = normalise_voter_file(path, [c for c in VOTER_COLUMNS if c in names], self.state, cache,
                                         outputs, storage.parquet_writer, spill_dir,
                                         processes=config.addresses().processes, progress=self.progress)
        return self.finish(stats)

    def after_partitions(self) -> dict:
        return {"compact_cache": CompactCaches(state=self.state, snapshot=self.snapshot, stage="addresses")}

    def merge(self, staging: Path, parts: list) -> dict:
        voters = pq.read_metadata(self.input_path("voters")).num_rows
        links = partitioning.in_row_order(self.read_parts(parts, "voter_addresses_part"), voters)
        addresses = partitioning.merge_addresses(self.read_parts(parts, "addresses_part"))
        self.write(staging, "addresses", addresses)
        self.write(staging, "voter_addresses", links)
        stats = partitioning.sum_counts([part.manifest() for part in parts], SUMMED_STATS)
        stats.update(addresses=addresses.num_rows, rules_version=RULES_VERSION, partitions=len(parts))
        return self.finish({name: stats[name] for name in ("voters", "unique_address_strings", "addresses",
                                                           "parsed_new", "cache_hits", "rules_version",
                                                           *SUMMED_STATS[4:], "partitions")})

    def finish(self, stats: dict) -> dict:
        self.progress(1.0, f"{stats['parsed_new']} new strings parsed, {stats['cache_hits']} from cache")
        stats["gates"] = self.enforce_gates([quality.address_parse_gate(
            stats.get("voters_by_parse_status", {}), self.thresholds()["address_parse_rate"], self.accepted())])
        return stats


class NormaliseAddressesPart(PartitionTask):
    """The voters whose raw address string (the parse cache's key: line or pieces, plus ZIP5)
    hashes to this partition. Each string is parsed by one partition only, so the partitions
    add disjoint entries to the shared cache; one address_key may still come from strings in
    several partitions, which the merge joins (partitioning.merge_addresses)."""

    stage_name = "addresses_part"

    def build(self, staging: Path) -> dict:
        voters = read_voter_addresses(self)
        keys = voter_cache_keys(voters)
        rows = self.partition_rows(keys)
        voters, keys = voters.take(pa.array(rows)), keys.take(pa.array(rows))
        cache = AddressCache(storage.cache_dir("addresses"), RULES_VERSION, compact_after=None)
        result = normalise_addresses(voters, self.state, cache=cache,
                                     processes=config.addresses().processes, progress=self.progress)
        links = result.voter_addresses
        self.write(staging, "voter_addresses_part", partitioning.with_rows(links, rows))
        first = partitioning.first_voter_rows(result.addresses, links, keys, rows)
        self.write(staging, "addresses_part", partitioning.with_rows(result.addresses, first, partitioning.FIRST_ROW))
        self.progress(1.0, f"partition {self.partition}: {voters.num_rows} voters, "
                           f"{result.stats['parsed_new']} new strings parsed")
        return dict(result.stats, partition=self.partition, partitions=self.partitions)

