"""The report's table sections: geography tables for every level the state has (and the tract
table the maps colour by), and snapshot changes by county (voter by voter, report/changes.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from voterpipe.cohorts import CohortConfig
from voterpipe.report.changes import CHANGE_TITLES, changes_by_county, voter_changes
from voterpipe.report.geography import OTHER_PARTY, Level, geography_table, levels_present, voter_counts
from voterpipe.report.markup import ReportTable
from voterpipe.report.sources import ReportSources, last_generals, released

TRACT = Level("tract", "By census tract", ("tract",))
KEY_TITLES = {"state": "State", "county_code": "County code", "county_name": "County",
              "precinct": "Precinct", "congressional_district": "Congressional district",
              "state_senate_district": "State senate district", "state_house_district": "State house district",
              "tract": "Tract"}


def geography_slug(level: str) -> str:
    return f"10_geography_{level}"


def _shown(table: pd.DataFrame, level: Level, parties: list[str], generals, unknown: str) -> pd.DataFrame:
    """The page's columns: area, counts, party shares, turnout per general (the CSV has all)."""
    columns = {k: KEY_TITLES[k] for k in ("state", *level.keys, "county_name") if k in table}
    columns |= {"registered": "Registered", "active": "Active", "households": "Households"}
    columns |= {f"share_{p}": f"{p} %" for p in parties if table[f"party_{p}"].sum() > 0}
    for bucket, title in ((OTHER_PARTY, "Other %"), (unknown, "No party %")):
        if table[f"party_{bucket}"].sum() > 0:
            columns[f"share_{bucket}"] = title
    columns |= {f"turnout_{day}": f"Turnout {day:%b %Y}" for day in generals}
    return table[list(columns)].rename(columns=columns)


def geography_section(sources: ReportSources, config: CohortConfig, household_codes: np.ndarray | None = None
                      ) -> tuple[list[ReportTable], dict[str, pd.DataFrame]]:
    """(one ReportTable per level the state has, every level's full table incl. tract, by level);
    `household_codes`: geography.household_numbers of the voters' household_id, when already made."""
    voters, votes = sources.voter_geography, sources.general_votes
    if voters is None or votes is None:
        return [], {}
    generals = last_generals(sources.elections, sources.snapshot)
    parties = list(config.party_order)
    counts = released(voter_counts)(voters, votes, generals, tuple(parties), config.unknown, household_codes)
    full, tables = {}, []
    for level in [*levels_present(voters), TRACT]:
        if level is TRACT and not ("tract" in voters and voters["tract"].notna().any()):
            continue
        table = released(geography_table)(voters, votes, generals, level, tuple(parties), config.unknown,
                                          sources.state, counts)
        full[level.name] = table
        if level is TRACT:
            continue  # mapped, not listed: thousands of rows say little as a table
        shown = _shown(table, level, parties, generals, config.unknown)
        formats = {c: ("pct" if c.endswith("%") or c.startswith("Turnout") else "count")
                   for c in shown.columns if c not in KEY_TITLES.values()}
        areas = len(table)
        tables.append(ReportTable(geography_slug(level.name), level.title,
                                  f"{areas:,} area{'s' if areas != 1 else ''}.", table, shown, formats))
    return tables, full


def geography_intro(sources: ReportSources) -> str:
    generals = last_generals(sources.elections, sources.snapshot)
    return ("Registered = everyone on the roll (all statuses); active = status active; households = distinct "
            "residential addresses; party columns: share of registered voters; turnout = voted / registered by "
            "election day" + (f" in the generals of {' and '.join(d.isoformat() for d in generals)}" if generals
                              else " (no general election in the vote history)")
            + ". Areas come from the geocoded address where it matched, else the state's file; 'unknown' holds "
            "voters without one. Click a column heading to sort; each table's CSV has the counts behind the shares.")


def changes_section(sources: ReportSources) -> tuple[list[ReportTable], pd.DataFrame | None]:
    """([changes by county], every voter's changes) against the previous snapshot, or ([], None)
    when the report has no previous snapshot (its first drop, or run without --previous)."""
    if sources.previous_roll is None or sources.voter_geography is None:
        return [], None
    changes = voter_changes(sources.previous_roll, sources.voter_geography)
    data = changes_by_county(changes)
    previous = sources.previous_snapshot.isoformat() if sources.previous_snapshot else "the previous snapshot"
    table = ReportTable(
        "11_changes_by_county", f"Changes since {previous}, by county",
        "New registrations (on this roll only); removals (off the roll, or now 'removed'; county as before); "
        "moves within the state (a different residential address key, the household rule); party switches "
        "(party known on both rolls); status changes other than removal (e.g. active -> inactive). Counties "
        "as of this snapshot except for removals. A voter can count under several changes.",
        data, shown=data.rename(columns={"county_code": "County code", "county_name": "County",
                                         **CHANGE_TITLES}),
        formats={title: "count" for title in CHANGE_TITLES.values()},
        empty_text="No change since the previous snapshot.")
    return [table], changes
