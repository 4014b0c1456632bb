"""BuildHouseholds: 05_households/<state>/<snapshot>/ households + voter_households."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from voterpipe import config
from voterpipe.formats.layouts import state_canonical
from voterpipe.households import GroupQuartersRule, build_households
from voterpipe.tasks.base import SnapshotTask

VOTER_COLUMNS = ["voter_id", "status", "last_name", "party", "birth_date", "birth_year", "registered_on"]


class BuildHouseholds(SnapshotTask):
    """One row per household (voters sharing an address_key) and each voter's household."""

    stage_name = "households"

    def build(self, staging: Path) -> dict:
        voters = self.read("voters", columns=VOTER_COLUMNS).to_pandas()
        links = self.read("voter_addresses").to_pandas()
        addresses = self.read("addresses", columns=["address_key", "unit_type", "unit_number"]).to_pandas()
        geocodes = self.read("geocodes").to_pandas()
        self.progress(0.2, f"{len(voters)} voters, {len(addresses)} addresses read")
        settings = config.households()
        rule = GroupQuartersRule(min_voters=settings.group_quarters_min_voters,
                                 min_surnames=settings.group_quarters_min_surnames)
        households, voter_households = build_households(voters, links, addresses, geocodes, self.snapshot, rule,
                                                        state_canonical(self.state, config.formats_dirs()).code_forms)
        self.write(staging, "households", pa.Table.from_pandas(households, preserve_index=False))
        self.write(staging, "voter_households", pa.Table.from_pandas(voter_households, preserve_index=False))
        self.progress(1.0, f"{len(households)} households")
        return household_manifest(households, voter_households, rule)


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
