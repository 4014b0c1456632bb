"""Snapshot changes voter by voter: new registrations, removals, moves within the state, party
switches and status changes since the previous snapshot, by county, with the voter ids of each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from voterpipe.households import assign_households

# new_registrant, removed, moved and party_switch follow voterpipe.cohorts.transitions exactly
CHANGES = ("new_registrant", "removed", "moved", "party_switch", "status_change")
CHANGE_TITLES = {"new_registrant": "New registrations", "removed": "Removals", "moved": "Moves within the state",
                 "party_switch": "Party switches", "status_change": "Status changes"}
# what each change's CSV holds in 'before' and 'after'
CHANGE_COLUMNS = {"new_registrant": "", "removed": "before/after: status (after empty: off the roll)",
                  "moved": "before/after: county code", "party_switch": "before/after: party",
                  "status_change": "before/after: status"}
ROLL_COLUMNS = ["voter_id", "county_code", "county_name", "status", "party", "household_id"]
VOTER_COLUMNS = ["voter_id", "change", "county_code", "county_name", "before", "after"]
UNKNOWN = "unknown"


def previous_roll(voters: pd.DataFrame, voter_addresses: pd.DataFrame) -> pd.DataFrame:
    """The previous snapshot's voters (canonical columns) with household_id = address_key by the
    BuildHouseholds rule (voterpipe.households.assign_households), as 06_cohorts rebuilds them."""
    households = assign_households(voters[["voter_id", "status"]], voter_addresses).set_index("voter_id")
    roll = voters.reindex(columns=ROLL_COLUMNS[:-1]).reset_index(drop=True)
    roll["household_id"] = households["household_id"].reindex(roll["voter_id"]).to_numpy()
    return roll


def _plain(roll: pd.DataFrame) -> pd.DataFrame:
    """ROLL_COLUMNS as object columns (categoricals would not compare across the two rolls)."""
    frame = roll.reindex(columns=ROLL_COLUMNS)
    return pd.DataFrame({c: frame[c].astype(object).where(frame[c].notna(), None) for c in ROLL_COLUMNS})


def voter_changes(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """One row per voter and change (VOTER_COLUMNS) between two rolls of ROLL_COLUMNS.

    new_registrant: on the current roll only. removed: on the previous roll only, or now 'removed'
    after another status (county as before). moved: household_id (address key) on both and
    different. party_switch: party known (not null/'unknown') on both and different.
    status_change: status on both, different, and not a removal (e.g. active -> inactive).
    Counties are the current ones except for removals. A voter can have several changes."""
    both = _plain(current).merge(_plain(previous), on="voter_id", how="outer", suffixes=("", "_before"),
                                 indicator=True)
    on_both = (both["_merge"] == "both").to_numpy()
    status, status_before = both["status"], both["status_before"]
    became_removed = on_both & (status == "removed").to_numpy() & (status_before != "removed").to_numpy()
    party, party_before = both["party"], both["party_before"]
    known = party.notna() & party_before.notna() & (party != UNKNOWN) & (party_before != UNKNOWN)
    home, home_before = both["household_id"], both["household_id_before"]
    rules = {
        "new_registrant": ((both["_merge"] == "left_only").to_numpy(), None),
        "removed": ((both["_merge"] == "right_only").to_numpy() | became_removed, "status"),
        "moved": (on_both & (home.notna() & home_before.notna() & (home != home_before)).to_numpy(), "county_code"),
        "party_switch": (on_both & (known & (party != party_before)).to_numpy(), "party"),
        "status_change": (on_both & ~became_removed & (status.notna() & status_before.notna()
                                                       & (status != status_before)).to_numpy(), "status"),
    }
    pieces = []
    for change, (mask, detail) in rules.items():
        rows = both[mask]
        county = "_before" if change == "removed" else ""
        pieces.append(pd.DataFrame({
            "voter_id": rows["voter_id"].to_numpy(), "change": change,
            "county_code": rows[f"county_code{county}"].fillna(UNKNOWN).to_numpy(),
            "county_name": rows[f"county_name{county}"].to_numpy(),
            "before": rows[f"{detail}_before"].to_numpy() if detail else None,
            "after": rows[detail].to_numpy() if detail else None}))
    changes = pd.concat(pieces, ignore_index=True)[VOTER_COLUMNS]
    return changes.sort_values(["change", "county_code", "voter_id"], kind="stable").reset_index(drop=True)


def changes_by_county(changes: pd.DataFrame) -> pd.DataFrame:
    """county_code, county_name and one count column per change (CHANGES), counties sorted."""
    counts = changes.pivot_table(index="county_code", columns="change", values="voter_id", aggfunc="size",
                                 fill_value=0).reindex(columns=list(CHANGES), fill_value=0)
    counts = counts.rename_axis(None, axis=1).reset_index()
    names = changes.dropna(subset=["county_name"]).drop_duplicates("county_code").set_index("county_code")
    counts.insert(1, "county_name", counts["county_code"].map(names["county_name"]))
    for change in CHANGES:
        counts[change] = counts[change].astype(np.int64)
    return counts.sort_values("county_code").reset_index(drop=True)


def voters_of(changes: pd.DataFrame, change: str) -> pd.DataFrame:
    """The voter ids of one change with their county and (party / status / county) before and after."""
    rows = changes[changes["change"] == change]
    return rows[["voter_id", "county_code", "county_name", "before", "after"]].reset_index(drop=True)
