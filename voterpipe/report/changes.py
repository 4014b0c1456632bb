"""Snapshot changes voter by voter: new registrations, removals, moves within the state, party
switches and status changes since the previous snapshot, by county, with the voter ids of each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.households import household_keys

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
    BuildHouseholds rule (voterpipe.households.household_keys), as 06_cohorts rebuilds them."""
    table = pa.Table.from_pandas(voters.reindex(columns=ROLL_COLUMNS[:-1]), preserve_index=False)
    links = pa.Table.from_pandas(voter_addresses[["voter_id", "address_key", "parse_status"]], preserve_index=False)
    return previous_roll_table(table, links).to_pandas()


def previous_roll_table(voters: pa.Table, voter_addresses: pa.Table) -> pa.Table:
    """previous_roll on Arrow tables (voters: ROLL_COLUMNS but household_id, missing ones null;
    voter_addresses: voter_id, address_key, parse_status): ROLL_COLUMNS as strings."""
    n = voters.num_rows
    roll = {name: _string(voters[name]) if name in voters.column_names else pa.nulls(n, pa.string())
            for name in ROLL_COLUMNS[:-1]}
    links = {name: _string(voter_addresses[name]) for name in ("voter_id", "address_key", "parse_status")}
    if not (len(links["voter_id"]) == n and links["voter_id"].equals(roll["voter_id"])):
        # not in voters.parquet order (NormaliseAddresses writes it so): each voter's own row
        for ids in (roll["voter_id"], links["voter_id"]):
            if pc.count_distinct(ids, mode="all").as_py() != len(ids):
                raise ValueError("voter_id is not unique in voters or voter_addresses")
        rows = pc.index_in(roll["voter_id"], value_set=links["voter_id"])
        links = {name: array.take(rows) for name, array in links.items()}
    # the building key is not wanted here: the address key stands in for it
    household, _ = household_keys(roll["status"], links["address_key"], links["address_key"],
                                  links["parse_status"])
    return pa.table({**roll, "household_id": household})


def _string(values) -> pa.Array:
    """One Arrow string array (chunks combined, dictionaries decoded)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values if values.type == pa.string() else values.cast(pa.string())


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
    rolls = _text_roll(previous), _text_roll(current)
    match = None if None in rolls else _id_match(rolls[0]["voter_id"], rolls[1]["voter_id"])
    if match is None:  # ids repeat or are missing, or columns are not text
        return _voter_changes_merged(previous, current)
    return voter_changes_arrow(*rolls, match)


def _voter_changes_merged(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """voter_changes by an outer merge of the two rolls (any column types, repeated ids)."""
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


def _text_roll(roll: pd.DataFrame) -> dict[str, pa.Array] | None:
    """ROLL_COLUMNS as Arrow strings (a missing column: nulls); None unless every column is text."""
    columns = {}
    for name in ROLL_COLUMNS:
        if name not in roll.columns:
            columns[name] = pa.nulls(len(roll), pa.string())
            continue
        array = pa.array(roll[name], from_pandas=True)
        if isinstance(array, pa.ChunkedArray):  # Arrow-backed str columns come chunked
            array = array.combine_chunks()
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        if pa.types.is_null(array.type):
            array = array.cast(pa.string())
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            return None
        columns[name] = array.cast(pa.string())
    return columns


def _id_match(previous: pa.Array, current: pa.Array) -> tuple[pa.Array, pa.Array] | None:
    """(each current voter's row on the previous roll, null if none; whether each previous voter
    is off the current roll), by one hash of both rolls' ids; None when an id is missing or
    repeats within a roll (voter_changes_arrow's premises)."""
    if previous.null_count or current.null_count:
        return None
    codes = pc.dictionary_encode(pa.concat_arrays([previous, current])).indices.to_numpy()
    before, now = codes[:len(previous)], codes[len(previous):]
    row = np.full(int(codes.max(initial=-1)) + 1, -1, dtype=np.int64)
    row[before] = np.arange(len(previous))
    on_roll = np.zeros(len(row), dtype=bool)
    on_roll[now] = True
    if np.count_nonzero(row >= 0) != len(previous) or np.count_nonzero(on_roll) != len(current):
        return None
    at = row[now]
    return pa.array(at, mask=at < 0), pa.array(~on_roll[before])


def voter_changes_arrow(previous: dict[str, pa.Array], current: dict[str, pa.Array],
                        match: tuple[pa.Array, pa.Array] | None = None) -> pd.DataFrame:
    """voter_changes on two rolls of unique voter ids (_text_roll; `match`: their _id_match):
    each current voter's previous row by a hash lookup instead of an outer merge of object columns."""
    at, gone = match or _id_match(previous["voter_id"], current["voter_id"])
    on_both = pc.is_valid(at)
    before = {name: previous[name].take(at) for name in ROLL_COLUMNS}

    def same(a, b):  # pandas object ==: a missing value equals nothing
        return pc.fill_null(pc.equal(a, b), False)

    def known(*arrays):
        return pc.and_(pc.is_valid(arrays[0]), pc.is_valid(arrays[1])) if len(arrays) == 2 else pc.is_valid(arrays[0])

    status, status_before = current["status"], before["status"]
    became_removed = pc.and_(pc.and_(on_both, same(status, pa.scalar("removed"))),
                             pc.invert(same(status_before, pa.scalar("removed"))))
    party, party_before = current["party"], before["party"]
    party_known = pc.and_(known(party, party_before), pc.and_(pc.invert(same(party, pa.scalar(UNKNOWN))),
                                                              pc.invert(same(party_before, pa.scalar(UNKNOWN)))))
    differ = {name: pc.and_(known(current[name], before[name]), pc.invert(same(current[name], before[name])))
              for name in ("household_id", "party", "status")}
    rules = {
        "new_registrant": (pc.invert(on_both), None),
        "moved": (pc.and_(on_both, differ["household_id"]), "county_code"),
        "party_switch": (pc.and_(on_both, pc.and_(party_known, differ["party"])), "party"),
        "status_change": (pc.and_(on_both, pc.and_(pc.invert(became_removed), differ["status"])), "status"),
    }
    pieces = [_change_rows(change, current["voter_id"], current, before, current, mask, detail)
              for change, (mask, detail) in rules.items()]
    nothing = {name: pa.nulls(len(previous["voter_id"]), pa.string()) for name in ROLL_COLUMNS}
    pieces.append(_change_rows("removed", previous["voter_id"], previous, previous, nothing, gone, "status"))
    pieces.append(_change_rows("removed", current["voter_id"], before, before, current, became_removed, "status"))
    changes = pd.concat(pieces, ignore_index=True)[VOTER_COLUMNS]
    return changes.sort_values(["change", "county_code", "voter_id"], kind="stable").reset_index(drop=True)


def _change_rows(change: str, ids: pa.Array, county: dict, before: dict, after: dict, mask: pa.Array,
                 detail: str | None) -> pd.DataFrame:
    """The rows of one change as the merge builds them: the county from `county`, 'before' and
    'after' from the `detail` column of `before` and `after`."""
    def taken(array):
        return array.filter(mask).to_numpy(zero_copy_only=False)

    return pd.DataFrame({
        "voter_id": taken(ids), "change": change,
        "county_code": taken(pc.fill_null(county["county_code"], UNKNOWN)),
        "county_name": taken(county["county_name"]),
        "before": taken(before[detail]) if detail else None,
        "after": taken(after[detail]) if detail else None})
