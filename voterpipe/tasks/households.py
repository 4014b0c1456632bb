"""BuildHouseholds: 05_households/<state>/<snapshot>/ households + voter_households; with
[scale] partitions = K > 1, the merge of K BuildHouseholdsPart tasks split by building."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import config, partitioning
from voterpipe.formats.layouts import state_canonical
from voterpipe.households import GroupQuartersRule, build_households
from voterpipe.tasks.partitions import PartitionedStage, PartitionTask

VOTER_COLUMNS = ["voter_id", "status", "last_name", "party", "birth_date", "birth_year", "registered_on"]
ADDRESS_COLUMNS = ["address_key", "building_key", "unit_type", "unit_number"]


def group_quarters_rule() -> GroupQuartersRule:
    settings = config.households()
    return GroupQuartersRule(min_voters=settings.group_quarters_min_voters,
                             min_surnames=settings.group_quarters_min_surnames)


def households_of(task, voters: pa.Table, links: pa.Table, addresses: pa.Table, geocodes: pa.Table):
    """build_households over Arrow inputs with the configured rule and the state's code forms."""
    task.progress(0.2, f"{voters.num_rows} voters, {addresses.num_rows} addresses read")
    return build_households(voters.to_pandas(), links.to_pandas(),
                            addresses.select(ADDRESS_COLUMNS[:1] + ADDRESS_COLUMNS[2:]).to_pandas(),
                            geocodes.to_pandas(), task.snapshot, group_quarters_rule(),
                            state_canonical(task.state, config.formats_dirs()).code_forms)


class BuildHouseholds(PartitionedStage):
    """One row per household (voters sharing an address_key) and each voter's household."""

    stage_name = "households"
    part_family = "BuildHouseholdsPart"
    merge_inputs = ("canonical",)

    def build_whole(self, staging: Path) -> dict:
        households, voter_households = households_of(
            self, self.read("voters", columns=VOTER_COLUMNS), self.read("voter_addresses"),
            self.read("addresses", columns=ADDRESS_COLUMNS), self.read("geocodes"))
        return self.finish(staging, households, voter_households)

    def merge(self, staging: Path, parts: list) -> dict:
        voters = pq.read_metadata(self.input_path("voters")).num_rows
        links = partitioning.in_row_order(self.read_parts(parts, "voter_households_part"), voters)
        households = pa.concat_tables(self.read_parts(parts, "households_part"))
        households = households.take(pc.sort_indices(households, [("household_id", "ascending")]))
        manifest = self.finish(staging, households, links)
        return dict(manifest, partitions=len(parts))

    def finish(self, staging: Path, households, voter_households) -> dict:
        """Write both tables (pandas or Arrow); the manifest body."""
        tables = [t if isinstance(t, pa.Table) else pa.Table.from_pandas(t, preserve_index=False)
                  for t in (households, voter_households)]
        self.write(staging, "households", tables[0])
        self.write(staging, "voter_households", tables[1])
        self.progress(1.0, f"{tables[0].num_rows} households")
        frames = [t if not isinstance(t, pa.Table) else t.to_pandas() for t in (households, voter_households)]
        return household_manifest(*frames, group_quarters_rule())


class BuildHouseholdsPart(PartitionTask):
    """The voters whose building_key hashes to this partition (voters without one: partition 0).
    A building's households stay together, so its multi-unit and group-quarters flags are the
    ones one task computes; household_id (= address_key) lies in one building."""

    stage_name = "households_part"

    def build(self, staging: Path) -> dict:
        links = self.read("voter_addresses")
        rows = self.partition_rows(links["building_key"])
        take = pa.array(rows)
        links = links.take(take)
        voters = self.read("voters", columns=VOTER_COLUMNS).take(take)
        addresses = self.read("addresses", columns=ADDRESS_COLUMNS)
        addresses = addresses.take(pa.array(self.partition_rows(addresses["building_key"])))
        addresses = addresses.filter(pc.is_valid(addresses["building_key"]))
        geocodes = self.read("geocodes")
        in_partition = pc.is_in(geocodes["address_key"], value_set=addresses["address_key"].combine_chunks())
        geocodes = geocodes.filter(in_partition)
        households, voter_households = households_of(self, voters, links, addresses, geocodes)
        self.write(staging, "households_part", pa.Table.from_pandas(households, preserve_index=False))
        self.write(staging, "voter_households_part", partitioning.with_rows(
            pa.Table.from_pandas(voter_households, preserve_index=False), rows))
        self.progress(1.0, f"partition {self.partition}: {len(households)} households")
        return {"households": len(households), "voters": len(voter_households),
                "partition": self.partition, "partitions": self.partitions}


def household_manifest(households, voter_households, rule: GroupQuartersRule) -> dict:
    sizes = households["voter_count"]
    return {
        "households": int(len(households)),
        "voters": int(len(voter_households)),
        "voters_in_households": int(voter_households["household_id"].notna().sum()),
        "mean_household_size": round(float(sizes.mean()), 4) if len(sizes) else 0.0,
        "party_mix": {k: int(v) for k, v in households["party_mix"].value_counts().items()},
        "likely_group_quarters": int(households["likely_group_quarters"].sum()),
        "multi_unit_households": int(households["building_multi_unit"].sum()),
        "geocoded_households": int((households["geocode_status"] == "match").sum()),
        "group_quarters_rule": {"min_voters": rule.min_voters, "min_surnames": rule.min_surnames},
    }
