"""The canonical Arrow schemas of every stage's tables: the one place a column is defined."""

from __future__ import annotations

import pyarrow as pa

STATUS_VALUES = ("active", "inactive", "removed", "other")
ELECTION_TYPES = ("general", "primary", "special", "runoff", "other")
VOTING_METHODS = ("in_person", "early", "absentee", "provisional", "other", "unknown")
BALLOT_STATUSES = ("counted", "not_counted", "did_not_vote")  # did_not_vote rows are never loaded
RACE_VALUES = ("white", "black", "asian", "native_american", "pacific_islander", "asian_pacific_islander",
               "hispanic", "multiracial", "other", "unknown")
PARSE_STATUSES = ("ok", "po_box", "rural_route", "ambiguous", "unparseable", "missing")
GEOCODE_STATUSES = ("match", "no_match", "tie", "not_sent")

_s = pa.string()

# 02_canonical ---------------------------------------------------------------------------------
VOTERS = pa.schema(
    [
        ("state", _s),
        ("snapshot", pa.date32()),
        ("voter_id", _s),  # the state's statewide id (NC ncid, FL county+id, ...)
        ("county_code", _s),
        ("county_name", _s),
        ("last_name", _s),
        ("first_name", _s),
        ("middle_name", _s),
        ("name_suffix", _s),
        ("birth_date", pa.date32()),
        ("birth_year", pa.int16()),
        ("gender", _s),  # M / F / U (null when the state does not report it)
        ("party", _s),  # normalised: DEM, REP, UNA, LIB, GRE, OTH; null where states have none
        ("party_raw", _s),
        ("status", _s),  # one of STATUS_VALUES
        ("status_raw", _s),
        ("registered_on", pa.date32()),
        # Residential address as delivered: either one line, or pieces.
        ("res_address_line", _s),
        ("res_house_number", _s),
        ("res_house_number_suffix", _s),
        ("res_pre_dir", _s),
        ("res_street_name", _s),
        ("res_street_type", _s),
        ("res_post_dir", _s),
        ("res_unit", _s),
        ("res_city", _s),
        ("res_state", _s),
        ("res_zip5", _s),
        ("res_zip4", _s),
        ("mail_address_line", _s),
        ("mail_city", _s),
        ("mail_state", _s),
        ("mail_zip", _s),
        ("precinct", _s),
        ("congressional_district", _s),
        ("state_senate_district", _s),
        ("state_house_district", _s),
        ("precinct_name", _s),
        ("vtd", _s),  # voting tabulation district (census VTD code as the state writes it)
        ("municipality", _s),
        ("ward", _s),
        ("school_district", _s),
        ("race", _s),  # one of RACE_VALUES (a code the state table lacks: unknown)
        ("ethnicity", _s),  # hispanic / not_hispanic / unknown; null where states have none
        ("phone", _s),  # ten digits; dummies (0000000) and other lengths are null, counted
        ("county_registration_number", _s),  # the county's own registration number (NC voter_reg_num)
        # Delivered columns no canonical field holds (layout [voters] extra): name -> value.
        ("extra", pa.map_(_s, _s)),
        ("source_file", _s),
        ("source_line", pa.int64()),  # 1-based physical line in the source file
    ]
)

HISTORY = pa.schema(
    [
        ("state", _s),
        ("snapshot", pa.date32()),
        ("voter_id", _s),
        ("election_date", pa.date32()),
        ("election_type", _s),  # one of ELECTION_TYPES
        ("election_type_raw", _s),
        ("voting_method", _s),  # one of VOTING_METHODS
        ("voting_method_raw", _s),
        ("ballot_status", _s),  # one of BALLOT_STATUSES: counted / not_counted (did_not_vote rows are skipped)
        ("party_ballot", _s),
        ("source_file", _s),
        ("source_line", pa.int64()),
    ]
)

REJECTS = pa.schema(
    [
        ("state", _s),
        ("snapshot", pa.date32()),
        ("source_file", _s),
        ("line_number", pa.int64()),
        ("raw_line", _s),
        ("reason", _s),
    ]
)

# 03_addresses ---------------------------------------------------------------------------------
ADDRESSES = pa.schema(
    [
        ("address_key", _s),  # stable hash of number, pre_dir, name, suffix, post_dir, unit, zip5
        ("building_key", _s),  # the same without the unit
        ("raw_address", _s),  # the string the normaliser saw (pieces joined for piecewise states)
        ("house_number", _s),
        ("pre_dir", _s),
        ("street_name", _s),
        ("street_type", _s),  # USPS Pub 28 suffix abbreviation
        ("post_dir", _s),
        ("unit_type", _s),  # Pub 28 secondary unit designator (APT, STE, UNIT, # ...)
        ("unit_number", _s),
        ("city", _s),
        ("state", _s),
        ("zip5", _s),
        ("standardized_line", _s),  # e.g. "123 N MAIN ST APT 4B"
        ("parse_status", _s),  # one of PARSE_STATUSES
        ("voter_count", pa.int32()),
    ]
)

VOTER_ADDRESSES = pa.schema(
    [
        ("voter_id", _s),
        ("address_key", _s),  # null only when parse_status is 'missing' or 'unparseable'
        ("building_key", _s),
        ("parse_status", _s),
    ]
)

# Census geography of a geocoded point, shared by geocodes and households.
GEOGRAPHY_FIELDS = [
    ("state_fips", _s),
    ("county_fips", _s),
    ("tract", _s),
    ("block_group", _s),
    ("block", _s),
    ("congressional_district", _s),
    ("state_senate_district", _s),
    ("state_house_district", _s),
]

# 04_geocoded ----------------------------------------------------------------------------------
GEOCODES = pa.schema(
    [
        ("address_key", _s),
        ("status", _s),  # one of GEOCODE_STATUSES
        ("match_type", _s),  # exact / non_exact; null unless matched
        ("match_method", _s),  # tiger: one of geocode.tiger_streets.METHODS; null unless matched
        ("match_score", pa.float32()),  # 0..1, lower the more the address had to be relaxed
        ("reason", _s),  # tiger tie/no_match: one of geocode.tiger_streets.REASONS
        ("matched_address", _s),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("tiger_line_id", pa.int64()),
        ("side", _s),  # L / R
        *GEOGRAPHY_FIELDS,
        ("backend", _s),
    ]
)

# 05_households --------------------------------------------------------------------------------
HOUSEHOLDS = pa.schema(
    [
        ("household_id", _s),  # = address_key
        ("building_key", _s),
        ("voter_count", pa.int32()),
        ("min_age", pa.int16()),
        ("max_age", pa.int16()),
        ("median_age", pa.float32()),
        ("party_mix", _s),  # single_party / mixed / unknown
        ("dem_count", pa.int32()),
        ("rep_count", pa.int32()),
        ("una_count", pa.int32()),
        ("other_party_count", pa.int32()),
        ("earliest_registered_on", pa.date32()),
        ("distinct_surnames", pa.int32()),
        ("likely_group_quarters", pa.bool_()),
        ("building_units_seen", pa.int32()),
        ("building_multi_unit", pa.bool_()),
        ("geocode_status", _s),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        *GEOGRAPHY_FIELDS,
    ]
)

VOTER_HOUSEHOLDS = pa.schema(
    [
        ("voter_id", _s),
        ("household_id", _s),  # null when the voter's address is unusable
        ("building_key", _s),
    ]
)


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast `table`'s columns to `schema`, adding missing ones as nulls."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)

# 06_cohorts (voterpipe/cohorts/) -------------------------------------------------------------
VOTER_COHORTS = pa.schema(
    [
        ("state", _s),
        ("snapshot", pa.date32()),
        ("voter_id", _s),
        ("county_code", _s),
        ("county_name", _s),
        ("status", _s),
        ("age", pa.int16()),  # as of the snapshot; null when birth data is missing or implausible
        ("age_method", _s),  # birth_date / birth_year / unknown (voterpipe.ages.AGE_METHODS)
        ("age_band_default", _s),  # config/cohorts.toml [age_schemes.default]; 'unknown' if no age
        ("age_band_ncsbe", _s),
        ("age_band_cps", _s),
        ("generation", _s),  # Pew birth-year cut-offs
        ("registered_on", pa.date32()),
        ("tenure_years", pa.int16()),
        ("tenure_band", _s),
        ("party", _s),  # normalised party, 'unknown' when null
        ("generals_eligible", pa.int8()),  # of the last 4 general elections before the snapshot
        ("generals_voted", pa.int8()),
        ("turnout_cohort", _s),  # super_voter / consistent / sporadic / lapsed / never_voted / new_registrant / unknown
        ("household_id", _s),
        ("household_size", pa.int32()),
        ("household_party_mix", _s),  # households.party_mix, or no_household
        ("geocoded", pa.bool_()),
        ("congressional_district", _s),  # household geocode, else the state file (district_source)
        ("state_senate_district", _s),
        ("state_house_district", _s),
        ("district_source", _s),  # geocode / state_file / none
        ("tract", _s),  # 11-digit 2020 tract GEOID; null unless geocoded
    ]
)

COHORT_TURNOUT = pa.schema(
    [
        ("state", _s),
        ("snapshot", pa.date32()),
        ("election_date", pa.date32()),
        ("election_type", _s),
        ("geography_level", _s),  # state / county / congressional_district / state_senate_district / state_house_district / tract
        ("geography", _s),
        ("geography_name", _s),  # county name for the county level, else null
        ("dimension", _s),  # all / age_band_<scheme> / generation / tenure_band / party / turnout_cohort
        ("cohort", _s),
        ("registered", pa.int64()),  # on the roll and registered on or before election day
        ("voted", pa.int64()),
        ("turnout", pa.float64()),  # voted / registered
    ]
)

COHORT_ELECTIONS = pa.schema(
    [
        ("election_date", pa.date32()),
        ("election_type", _s),
        ("voters", pa.int64()),  # distinct voters on the current roll with a history row
        ("is_general_considered", pa.bool_()),  # one of the last 4 generals behind turnout_cohort
    ]
)

HOUSEHOLD_SIZES = pa.schema(
    [
        ("household_size", _s),  # "1" .. "7", "8+"
        ("size_order", pa.int32()),
        ("households", pa.int64()),
        ("voters", pa.int64()),
    ]
)

HOUSEHOLD_PARTY_MIX = pa.schema(
    [
        ("dimension", _s),
        ("cohort", _s),
        ("party_mix", _s),  # single_party / mixed / unknown / no_household
        ("voters", pa.int64()),
        ("share", pa.float64()),  # of the cohort's voters
    ]
)

GEOCODE_COVERAGE = pa.schema(
    [
        ("county_code", _s),
        ("county_name", _s),
        ("voters", pa.int64()),
        ("voters_with_address", pa.int64()),  # voters with a household (a usable address)
        ("voters_geocoded", pa.int64()),  # voters whose household address matched
        ("geocode_rate", pa.float64()),  # voters_geocoded / voters
    ]
)

COHORT_TRANSITIONS = pa.schema(
    [
        ("previous_snapshot", pa.date32()),
        ("change", _s),  # new_registrant / removed / moved / party_switch
        ("dimension", _s),  # all / age_band_default / generation / party / turnout_cohort / county_code / party_switch
        ("cohort", _s),
        ("voters", pa.int64()),
    ]
)

# 07_reporting/voter_file: voters_enriched, one row per voter --------------------------------
# Each voter's columns, then what the voter file joins to it (names say where each comes from:
# address_* from 03_addresses, geocode_*/geo_* and the census codes from 04_geocoded,
# household_* from 05_households), then the cohort labels of 06_cohorts.
VOTERS_ENRICHED_LOOKUPS = pa.schema(
    [
        ("address_key", _s),
        ("building_key", _s),
        ("address_parse_status", _s),
        ("address_line", _s),  # the Pub 28 standardised line
        ("address_city", _s),
        ("address_zip5", _s),
        ("geocode_status", _s),
        ("geocode_match_type", _s),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("state_fips", _s),
        ("county_fips", _s),
        ("tract", _s),
        ("block_group", _s),
        ("block", _s),
        ("geo_congressional_district", _s),  # from the geocode, beside the state file's own
        ("geo_state_senate_district", _s),
        ("geo_state_house_district", _s),
        ("household_id", _s),
        ("household_voter_count", pa.int32()),
        ("household_party_mix", _s),
        ("household_likely_group_quarters", pa.bool_()),
        ("household_building_multi_unit", pa.bool_()),
    ]
)
VOTERS_ENRICHED_COHORT_LABELS = (
    "age", "age_method", "age_band_default", "age_band_ncsbe", "age_band_cps", "generation",
    "tenure_years", "tenure_band", "generals_eligible", "generals_voted", "turnout_cohort",
    "geocoded", "district_source",
)
VOTERS_ENRICHED = pa.schema(
    list(VOTERS) + list(VOTERS_ENRICHED_LOOKUPS)
    + [VOTER_COHORTS.field(name) for name in VOTERS_ENRICHED_COHORT_LABELS]
)
