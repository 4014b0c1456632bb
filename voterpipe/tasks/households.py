"""BuildHouseholds: 05_households/<state>/<snapshot>/ households + voter_households (a roll over
1Mi voters in bounded memory, a bucket of buildings at a time); with [scale] partitions = K > 1,
the merge of K BuildHouseholdsPart tasks split by building."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from voterpipe import config, partitioning, storage
from voterpipe.formats.layouts import state_canonical
from voterpipe.household_buckets import (ADDRESS_COLUMNS, GEOCODE_COLUMNS, LINK_COLUMNS, VOTER_COLUMNS,
                                         HouseholdInputs, LinksOutOfOrder, bucket_count,
                                         build_households_in_buckets)
from voterpipe.households import GroupQuartersRule, build_households
from voterpipe.tasks.partitions import PartitionedStage, PartitionTask


def group_quarters_rule() -> GroupQuartersRule:
    settings = config.households()
    return GroupQuartersRule(min_voters=settings.group_quarters_min_voters,
                             min_surnames=settings.group_quarters_min_surnames)


def read_geocodes(task) -> pa.Table:
    """The geocodes columns households use (those the file has; a missing one stays null)."""
    names = set(pq.read_schema(task.input_path("geocodes")).names)
    return task.read("geocodes", columns=[c for c in GEOCODE_COLUMNS if c in names])


def voters_and_links(task):
    """voters and voter_addresses as pandas. When both list the same voters in the same order
    (NormaliseAddresses keeps voters.parquet order) the links share the voters' voter_id
    strings instead of holding a second copy of every id."""
    voters = task.read("voters", columns=VOTER_COLUMNS)
    links = task.read("voter_addresses", columns=LINK_COLUMNS)
    aligned = links["voter_id"].equals(voters["voter_id"])
    voters = as_frame(voters)
    if not aligned:
        return voters, as_frame(links)
    links = as_frame(links.drop_columns(["voter_id"]))
    links.insert(0, "voter_id", voters["voter_id"].array)
    return voters, links


def as_frame(table: pa.Table):
    """pandas copy of a table the caller no longer uses: its Arrow buffers are released while
    converting (self_destruct), so the two copies never both exist whole."""
    return table.to_pandas(split_blocks=True, self_destruct=True)


def households_of(task, voters, links, addresses, geocodes):
    """build_households with the configured rule and the state's code forms; inputs are pandas
    frames or Arrow tables, which are consumed (converted with as_frame)."""
    task.progress(0.2, f"{len(voters)} voters, {len(addresses)} addresses read")
    frames = [t if not isinstance(t, pa.Table) else as_frame(t) for t in (voters, links, addresses, geocodes)]
    return build_households(*frames, task.snapshot, group_quarters_rule(),
                            state_canonical(task.state, config.formats_dirs()).code_forms)


class BuildHouseholds(PartitionedStage):
    """One row per household (voters sharing an address_key) and each voter's household."""

    stage_name = "households"
    part_family = "BuildHouseholdsPart"
    merge_inputs = ("canonical",)

    def build_whole(self, staging: Path) -> dict:
        inputs = HouseholdInputs(*(self.input_path(d) for d in ("voters", "voter_addresses", "addresses", "geocodes")))
        buckets = bucket_count(pq.read_metadata(inputs.voters).num_rows)
        if buckets > 1:
            try:
                return self.build_in_buckets(staging, inputs, buckets)
            except LinksOutOfOrder as err:  # not NormaliseAddresses' order: the whole roll at once
                self.progress(0.1, f"{err}: the whole roll at once")
        # each input becomes pandas as soon as it is read, its Arrow copy gone before the next read
        voters, links = voters_and_links(self)
        built = list(households_of(
            self, voters, links,
            as_frame(self.read("addresses", columns=[c for c in ADDRESS_COLUMNS if c != "building_key"])),
            as_frame(read_geocodes(self))))
        return self.finish(staging, built)

    def build_in_buckets(self, staging: Path, inputs: HouseholdInputs, buckets: int) -> dict:
        """A large roll a bucket of buildings at a time (voterpipe.household_buckets), each file
        written a row group at a time: the same files as build_households of the whole roll."""
        writers = {name: storage.parquet_writer(Path(staging) / self.stage.dataset(name).file,
                                                self.stage.dataset(name).schema)
                   for name in ("households", "voter_households")}
        try:
            with tempfile.TemporaryDirectory(prefix=".buckets-", dir=staging) as spill:
                counts = build_households_in_buckets(
                    inputs, self.snapshot, group_quarters_rule(),
                    state_canonical(self.state, config.formats_dirs()).code_forms, Path(spill),
                    writers["households"].write_table, writers["voter_households"].write_table, buckets,
                    lambda message: self.progress(0.5, message))
        finally:
            for writer in writers.values():
                writer.close()
        self.progress(1.0, f"{counts['households']} households")
        rule = group_quarters_rule()
        return {**counts, "group_quarters_rule": {"min_voters": rule.min_voters, "min_surnames": rule.min_surnames}}

    def merge(self, staging: Path, parts: list) -> dict:
        voters = pq.read_metadata(self.input_path("voters")).num_rows
        links = partitioning.in_row_order(self.read_parts(parts, "voter_households_part"), voters)
        households = pa.concat_tables(self.read_parts(parts, "households_part"))
        households = households.take(pc.sort_indices(households, [("household_id", "ascending")]))
        built = [households, links]
        del households, links
        manifest = self.finish(staging, built)
        return dict(manifest, partitions=len(parts))

    def finish(self, staging: Path, built: list) -> dict:
        """Write [households, voter_households] (pandas or Arrow); the manifest body. The list is
        emptied as each table is written, so only one is held in both forms at a time."""
        frames = [t if not isinstance(t, pa.Table) else t.to_pandas() for t in built]
        manifest = household_manifest(*frames, group_quarters_rule())
        del frames
        for dataset in ("households", "voter_households"):
            table = built.pop(0)
            table = table if isinstance(table, pa.Table) else pa.Table.from_pandas(table, preserve_index=False)
            if dataset == "households":
                self.progress(1.0, f"{table.num_rows} households")
            self.write(staging, dataset, table)
            del table
        return manifest


class BuildHouseholdsPart(PartitionTask):
    """The voters whose building_key hashes to this partition (voters without one: partition 0).
    A building's households stay together, so its multi-unit and group-quarters flags are the
    ones one task computes; household_id (= address_key) lies in one building."""

    stage_name = "households_part"

    def build(self, staging: Path) -> dict:
        links = self.read("voter_addresses", columns=LINK_COLUMNS)
        rows = self.partition_rows(links["building_key"])
        take = pa.array(rows)
        links = links.take(take)
        voters = self.read("voters", columns=VOTER_COLUMNS).take(take)
        addresses = self.read("addresses", columns=ADDRESS_COLUMNS)
        addresses = addresses.take(pa.array(self.partition_rows(addresses["building_key"])))
        addresses = addresses.filter(pc.is_valid(addresses["building_key"]))
        geocodes = read_geocodes(self)
        in_partition = pc.is_in(geocodes["address_key"], value_set=addresses["address_key"].combine_chunks())
        geocodes = geocodes.filter(in_partition)
        households, voter_households = households_of(
            self, voters, links, addresses.drop_columns(["building_key"]), geocodes)
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
