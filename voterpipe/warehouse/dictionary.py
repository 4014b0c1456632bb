"""The warehouse's data dictionary: one description per table and column, the single source of the
COMMENT ON statements (DuckDB and PostgreSQL) and of docs/data-dictionary.md.

Column lists are not written here: published_columns() derives them from the schemas in
voterpipe.schema through the same SQL a publish runs, so a new column without a description shows
up (tests/test_dictionary.py fails) instead of drifting.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path

log = logging.getLogger("voterpipe.warehouse")
MISSING = "(no description yet)"

TABLES = {
    "voters_enriched": "The enriched voter file: one row per voter of a (state, snapshot), the state's columns "
                       "joined with the normalised address, its geocode, the household and the cohort labels.",
    "households": "One row per household (voters registered at the same residential address, unit included) "
                  "of a (state, snapshot).",
    "addresses": "One row per distinct residential address of a (state, snapshot), USPS Pub 28 standardised, "
                 "with its geocode.",
    "vote_history": "One row per vote-history record (voter x election) as the state delivered it.",
    "cohort_turnout": "Registered voters, voters who voted and turnout by election x geography x cohort "
                      "dimension x cohort.",
    "publications": "One row per published (state, snapshot, table): the marker a publish writes last.",
}
VIEWS = {
    "current_voters": "voters_enriched", "current_households": "households", "current_addresses": "addresses",
    "current_vote_history": "vote_history", "current_cohort_turnout": "cohort_turnout",
}

_DISTRICT = " district code; leading zeros dropped where the cohorts stage normalised it"
COLUMNS = {
    # slice
    "state": "Lower-case postal code of the state whose drop this row comes from (nc, oh, ...).",
    "snapshot": "Date of the state's drop (the snapshot) this row belongs to.",
    # voter (02_canonical)
    "voter_id": "The state's statewide voter id (NC ncid, FL county code + voter id, ...).",
    "county_code": "The state's own county code as delivered (not necessarily a FIPS code).",
    "county_name": "County name as delivered or looked up from the layout's county table.",
    "last_name": "Surname as delivered.", "first_name": "Given name as delivered.",
    "middle_name": "Middle name as delivered.", "name_suffix": "Name suffix (JR, SR, III ...).",
    "birth_date": "Date of birth where the state gives one; null otherwise or when a placeholder.",
    "birth_year": "Year of birth (from the birth date, or the state's birth year / age column).",
    "gender": "M, F or U; null when the state does not report it.",
    "party": "Registered party normalised to DEM, REP, UNA, LIB, GRE or OTH; null where the state has none.",
    "party_raw": "Party code exactly as delivered.",
    "status": "Registration status normalised: active, inactive, removed or other.",
    "status_raw": "Status code exactly as delivered.",
    "registered_on": "Registration date; null when missing or a placeholder.",
    "res_address_line": "Residential address as one line, when the state delivers it so.",
    "res_house_number": "Residential house number (piecewise states).",
    "res_house_number_suffix": "House number suffix such as 1/2 or A (piecewise states).",
    "res_pre_dir": "Street pre-directional (N, SE ...) as delivered.",
    "res_street_name": "Street name as delivered.", "res_street_type": "Street type as delivered.",
    "res_post_dir": "Street post-directional as delivered.", "res_unit": "Unit (apartment, suite) as delivered.",
    "res_city": "Residential city.", "res_state": "Residential state postal code.",
    "res_zip5": "Residential 5-digit ZIP code.", "res_zip4": "Residential ZIP+4 extension.",
    "mail_address_line": "Mailing address line.", "mail_city": "Mailing city.",
    "mail_state": "Mailing state.", "mail_zip": "Mailing ZIP code.",
    "precinct": "Voting precinct code as delivered (unique within a county only).",
    "congressional_district": "Congressional" + _DISTRICT + "; from the state's file.",
    "state_senate_district": "State senate (upper house)" + _DISTRICT + "; from the state's file.",
    "state_house_district": "State house (lower house)" + _DISTRICT + "; from the state's file.",
    "precinct_name": "Voting precinct name as delivered.",
    "vtd": "Voting tabulation district (census VTD code as the state writes it).",
    "municipality": "Municipality (city, town, township) of registration as delivered.",
    "ward": "Municipal ward as delivered.",
    "school_district": "School district as delivered.",
    "race": "Race normalised to schema.RACE_VALUES (a code the state's table lacks: unknown); null where "
            "the state does not report it.",
    "ethnicity": "hispanic, not_hispanic or unknown; null where the state does not report it.",
    "phone": "Phone number as ten digits; dummies (0000000) and other lengths are null.",
    "county_registration_number": "The county's own registration number (NC voter_reg_num).",
    "extra": "Delivered columns no canonical field holds (the layout's [voters] extra): name -> value.",
    "ballot_status": "counted or not_counted (a ballot the state did not count is no vote; did-not-vote "
                     "lines are skipped at import).",
    "source_file": "Name of the delivered file the row was read from.",
    "source_line": "1-based physical line of the row in its source file.",
    # vote history
    "election_date": "Date of the election.",
    "election_type": "Election type normalised: general, primary, special, runoff or other.",
    "election_type_raw": "Election type or description as delivered.",
    "voting_method": "How the vote was cast: in_person, early, absentee, provisional, other or unknown.",
    "voting_method_raw": "Voting method code as delivered.",
    "party_ballot": "Party ballot chosen in a primary, where the state records it.",
    # addresses (03_addresses)
    "address_key": "Stable hash of the standardised address (number, directionals, street, suffix, unit, ZIP5): "
                   "the household and geocode key.",
    "building_key": "The address_key without the unit: one building.",
    "raw_address": "The address string the normaliser saw (pieces joined for piecewise states).",
    "house_number": "Standardised house number.", "pre_dir": "Standardised pre-directional.",
    "street_name": "Standardised street name.", "street_type": "USPS Pub 28 street suffix abbreviation.",
    "post_dir": "Standardised post-directional.",
    "unit_type": "USPS Pub 28 secondary unit designator (APT, STE, UNIT, # ...).",
    "unit_number": "Unit number.", "city": "City of the standardised address.", "zip5": "5-digit ZIP code.",
    "standardized_line": "The standardised delivery line, e.g. 123 N MAIN ST APT 4B.",
    "parse_status": "How the address parsed: ok, po_box, rural_route, ambiguous, unparseable or missing.",
    "voter_count": "Registered voters at this address.",
    "address_state": "State of the standardised address (the table's own state column is the drop's state).",
    # geocodes (04_geocoded)
    "geocode_status": "Geocode result: match, no_match, tie (several candidates, none chosen) or not_sent.",
    "geocode_match_type": "exact or non_exact; null unless matched.",
    "match_method": "TIGER engine: which matching rule matched (geocode.tiger_streets.METHODS); null unless matched.",
    "match_score": "0..1, lower the more the address had to be relaxed to match.",
    "reason": "TIGER engine: why a tie or no_match (geocode.tiger_streets.REASONS).",
    "matched_address": "The address the geocoder matched, as it spells it.",
    "lon": "Longitude of the geocoded point (WGS84 degrees).", "lat": "Latitude of the geocoded point (WGS84 degrees).",
    "tiger_line_id": "TIGER/Line edge id (TLID) the point was interpolated on.",
    "side": "Side of the street edge: L or R.",
    "state_fips": "2-digit state FIPS code of the geocoded point.",
    "county_fips": "3-digit county FIPS code of the geocoded point.",
    "tract": "6-digit 2020 census tract code (within the county) of the geocoded point.",
    "block_group": "1-digit census block group code of the geocoded point.",
    "block": "4-digit census block code of the geocoded point.",
    "geocode_backend": "Which geocoder produced the row (census, tiger, ...).",
    # voter file lookups (07_reporting/voter_file)
    "address_parse_status": "parse_status of the voter's residential address.",
    "address_line": "The voter's Pub 28 standardised residential line.",
    "address_city": "City of the voter's standardised address.", "address_zip5": "ZIP5 of the voter's standardised address.",
    "geo_congressional_district": "Congressional district of the geocoded point (beside the state file's own).",
    "geo_state_senate_district": "State senate district of the geocoded point.",
    "geo_state_house_district": "State house district of the geocoded point.",
    "household_id": "The voter's household (= address_key); null when the address is unusable.",
    "household_voter_count": "Registered voters in the voter's household.",
    "household_party_mix": "Party mix of the household: single_party, mixed, unknown (or no_household).",
    "household_likely_group_quarters": "The household looks like group quarters (many voters, many surnames).",
    "household_building_multi_unit": "The household's building has more than one unit seen.",
    # cohorts (06_cohorts)
    "age": "Age in whole years as of the snapshot; null when birth data is missing or implausible.",
    "age_method": "How age was computed: birth_date, birth_year or unknown.",
    "age_band_default": "10-year age band (config/cohorts.toml age_schemes.default); 'unknown' without an age.",
    "age_band_ncsbe": "Age band as the NC State Board of Elections labels it.",
    "age_band_cps": "Age band as the Census Current Population Survey tables use.",
    "generation": "Pew generation from the birth year.",
    "tenure_years": "Whole years registered as of the snapshot.", "tenure_band": "Band of tenure_years.",
    "generals_eligible": "Of the last 4 general elections before the snapshot, how many the voter was registered for.",
    "generals_voted": "Of those, how many the voter voted in.",
    "turnout_cohort": "super_voter, consistent, sporadic, lapsed, never_voted, new_registrant or unknown.",
    "geocoded": "The voter's household address matched the geocoder.",
    "district_source": "Where the cohorts stage took the districts from: geocode, state_file or none.",
    # households (05_households)
    "min_age": "Youngest voter's age in the household.", "max_age": "Oldest voter's age in the household.",
    "median_age": "Median voter age in the household.",
    "party_mix": "single_party, mixed or unknown: whether the household's voters share one party.",
    "dem_count": "DEM voters in the household.", "rep_count": "REP voters in the household.",
    "una_count": "Unaffiliated voters in the household.", "other_party_count": "Voters of other parties in the household.",
    "earliest_registered_on": "Earliest registration date among the household's voters.",
    "distinct_surnames": "Distinct surnames among the household's voters.",
    "likely_group_quarters": "Looks like group quarters (thresholds in luigi.cfg [households]).",
    "building_units_seen": "Distinct units seen in the household's building.",
    "building_multi_unit": "The building has more than one unit seen.",
    # cohort turnout
    "geography_level": "state, county, congressional_district, state_senate_district, state_house_district or tract.",
    "geography": "The area's code at that level (11-digit GEOID for tracts; 'unknown' for voters without one).",
    "geography_name": "County name at the county level, else null.",
    "dimension": "Cohort dimension: all, age_band_<scheme>, generation, tenure_band, party or turnout_cohort.",
    "cohort": "The cohort within the dimension.",
    "registered": "Voters on the roll registered on or before election day (or with no date, or who voted).",
    "voted": "Of those, voters with a history record for the election.",
    "turnout": "voted / registered.",
    # publications
    "table_name": "The warehouse table this marker row is about.",
    "row_count": "Rows the publish loaded into the table for the slice.",
    "checksum": "sha256 over the upstream files' sha256 digests: exactly what was loaded.",
    "nul_stripped": "NUL characters removed from text values while loading (PostgreSQL refuses them).",
    "published_at": "When the publish committed (UTC).",
}
# Where one name means something different in one table.
TABLE_COLUMNS = {
    ("households", "voter_count"): "Registered voters in the household.",
    ("households", "geocode_status"): "geocode_status of the household's address.",
    ("households", "congressional_district"): "Congressional district of the household's geocoded point.",
    ("households", "state_senate_district"): "State senate district of the household's geocoded point.",
    ("households", "state_house_district"): "State house district of the household's geocoded point.",
    ("addresses", "congressional_district"): "Congressional district of the geocoded point.",
    ("addresses", "state_senate_district"): "State senate district of the geocoded point.",
    ("addresses", "state_house_district"): "State house district of the geocoded point.",
    ("publications", "state"): "The state of the published slice.",
    ("publications", "snapshot"): "The snapshot of the published slice.",
}
MARKER_COLUMNS = ("state", "snapshot", "table_name", "row_count", "checksum", "nul_stripped", "published_at")


def describe(table: str, column: str) -> str:
    """The column's description (views share their table's); MISSING when there is none."""
    table = VIEWS.get(table, table)
    return TABLE_COLUMNS.get((table, column)) or COLUMNS.get(column) or MISSING


def describe_table(name: str) -> str:
    if name in VIEWS:
        return f"{TABLES[VIEWS[name]]} Only each state's latest published snapshot."
    return TABLES.get(name, MISSING)


def published_columns() -> dict[str, list[str]]:
    """Every warehouse table's columns, from the schemas in voterpipe.schema through the SQL a
    publish runs (on empty tables, in memory)."""
    import duckdb

    from voterpipe import catalog
    from voterpipe.warehouse import tables as wt

    con = duckdb.connect()
    try:
        wt.register_tables(con, {name: catalog.dataset(name)[1].schema.empty_table() for name in wt.PUBLISH_SOURCES})
        columns = {t.name: [row[0] for row in con.execute(
            "DESCRIBE " + wt.table_sql(con, t.name, "xx", date(2000, 1, 1))).fetchall()] for t in wt.TABLES}
    finally:
        con.close()
    columns[wt.MARKER_TABLE] = list(MARKER_COLUMNS)
    return columns


def undocumented() -> list[str]:
    """'table.column' for every published column without a description."""
    return [f"{t}.{c}" for t, cs in published_columns().items() for c in cs if describe(t, c) == MISSING] \
        + [t for t in published_columns() if describe_table(t) == MISSING]


def comment_statements(name: str, relation: str, kind: str, columns: list[str], quote_ident,
                       quote_literal) -> list[str]:
    """COMMENT ON statements for table or view `name` (written `relation` in SQL, schema-qualified
    where needed) and its columns; DuckDB and PostgreSQL both accept them. Columns without a
    description are logged and commented MISSING: a publish never fails for want of one."""
    lacking = [c for c in columns if describe(name, c) == MISSING]
    if lacking:
        log.warning("warehouse: %d columns of %s have no description: %s", len(lacking), name, lacking)
    return [f"COMMENT ON {kind} {relation} IS {quote_literal(describe_table(name))}"] + [
        f"COMMENT ON COLUMN {relation}.{quote_ident(c)} IS {quote_literal(describe(name, c))}" for c in columns]


def markdown() -> str:
    """docs/data-dictionary.md: every table's description and columns with their types."""
    from voterpipe.warehouse import tables as wt

    lines = ["# Data dictionary", "",
             "Generated by `voterpipe docs` from `voterpipe/warehouse/dictionary.py` "
             "(the same text the warehouse carries as `COMMENT ON` in DuckDB and PostgreSQL); do not edit by hand.",
             "", "Each table holds every published (state, snapshot); the `current_*` views show each state's "
             "latest snapshot: " + ", ".join(f"`{v}` ({t})" for v, t in VIEWS.items()) + ".", ""]
    for table, columns in published_columns().items():
        view = next((v for v, t in VIEWS.items() if t == table), None)
        lines += [f"## {table}", "", describe_table(table) + (f" View: `{view}`." if view else ""), "",
                  "| Column | Description |", "|---|---|"]
        lines += [f"| `{c}` | {describe(table, c).replace('|', '/')} |" for c in columns]
        lines.append("")
    lines += ["Stage files (Parquet) use the same column names; their Arrow schemas are in `voterpipe/schema.py`, "
              f"their files in `voterpipe/catalog.py`. Warehouse tables: {', '.join(wt.TABLE_NAMES)}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write docs/data-dictionary.md")
    parser.add_argument("--out", default="docs/data-dictionary.md")
    args = parser.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(markdown())
    missing = undocumented()
    print(f"wrote {args.out}" + (f"; undocumented: {', '.join(missing)}" if missing else ""))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())


def apply_duckdb_comments(con) -> None:
    """Comment every warehouse table, view and column of a DuckDB warehouse (after a publish's
    CREATE OR REPLACE VIEW, which drops the views' comments)."""
    from voterpipe.warehouse.tables import quote_ident, quote_literal

    relations = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
    for name, table_type in relations:
        if name not in TABLES and name not in VIEWS:
            continue
        columns = [row[0] for row in con.execute(f"DESCRIBE {quote_ident(name)}").fetchall()]
        kind = "VIEW" if table_type == "VIEW" else "TABLE"
        for statement in comment_statements(name, quote_ident(name), kind, columns, quote_ident, quote_literal):
            con.execute(statement)


def apply_pg_comments(cur, schema_name: str, name: str, columns, kind: str = "TABLE", force: bool = False) -> None:
    """Comment a PostgreSQL table or view and its columns, when forced (it changed) or when it has
    no comment yet: COMMENT ON takes a lock, so unchanged relations are left alone."""
    from psycopg2 import sql

    relation = sql.Identifier(schema_name, name).as_string(cur)
    if not force:
        cur.execute("SELECT obj_description(%s::regclass, 'pg_class')", [relation])
        if cur.fetchone()[0] is not None:
            return
    for statement in comment_statements(name, relation, kind, list(columns),
                                        lambda c: sql.Identifier(c).as_string(cur),
                                        lambda t: sql.Literal(t).as_string(cur)):
        cur.execute(statement)
