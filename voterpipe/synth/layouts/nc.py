"""North Carolina: `ncvoter_Statewide.txt` (67 columns, or the 71-column pre-2022 order) and `ncvhis`.

formats.md §1: TAB, header, Latin-1; the pre-2022 vintage here quotes every field and is UTF-16LE
with a BOM. `res_street_address` has two spaces after the number and the unit after three spaces
and a '#'; some removed voters have the address REMOVED; `registr_dt` may be `##/##/####`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import pyarrow.compute as pc

from voterpipe.synth.layouts.common import (
    DropContext, address_parts, by_unique, dates, history_rows, labels, mailing, pick, precinct_numbers)
from voterpipe.synth.render import TextFile, choose, concat, zero_pad

CURRENT_COLUMNS = [
    "county_id", "county_desc", "voter_reg_num", "ncid", "last_name", "first_name", "middle_name",
    "name_suffix_lbl", "status_cd", "voter_status_desc", "reason_cd", "voter_status_reason_desc",
    "res_street_address", "res_city_desc", "state_cd", "zip_code", "mail_addr1", "mail_addr2", "mail_addr3",
    "mail_addr4", "mail_city", "mail_state", "mail_zipcode", "full_phone_number", "confidential_ind",
    "registr_dt", "race_code", "ethnic_code", "party_cd", "gender_code", "birth_year", "age_at_year_end",
    "birth_state", "drivers_lic", "precinct_abbrv", "precinct_desc", "municipality_abbrv", "municipality_desc",
    "ward_abbrv", "ward_desc", "cong_dist_abbrv", "super_court_abbrv", "judic_dist_abbrv", "nc_senate_abbrv",
    "nc_house_abbrv", "county_commiss_abbrv", "county_commiss_desc", "township_abbrv", "township_desc",
    "school_dist_abbrv", "school_dist_desc", "fire_dist_abbrv", "fire_dist_desc", "water_dist_abbrv",
    "water_dist_desc", "sewer_dist_abbrv", "sewer_dist_desc", "sanit_dist_abbrv", "sanit_dist_desc",
    "rescue_dist_abbrv", "rescue_dist_desc", "munic_dist_abbrv", "munic_dist_desc", "dist_1_abbrv",
    "dist_1_desc", "vtd_abbrv", "vtd_desc",
]
PRE2022_COLUMNS = [
    "county_id", "county_desc", "voter_reg_num", "status_cd", "voter_status_desc", "reason_cd",
    "voter_status_reason_desc", "absent_ind", "name_prefx_cd", "last_name", "first_name", "middle_name",
    "name_suffix_lbl", "res_street_address", "res_city_desc", "state_cd", "zip_code", "mail_addr1", "mail_addr2",
    "mail_addr3", "mail_addr4", "mail_city", "mail_state", "mail_zipcode", "full_phone_number", "race_code",
    "ethnic_code", "party_cd", "gender_code", "birth_age", "birth_state", "drivers_lic", "registr_dt",
    "precinct_abbrv", "precinct_desc", "municipality_abbrv", "municipality_desc", "ward_abbrv", "ward_desc",
    "cong_dist_abbrv", "super_court_abbrv", "judic_dist_abbrv", "nc_senate_abbrv", "nc_house_abbrv",
    "county_commiss_abbrv", "county_commiss_desc", "township_abbrv", "township_desc", "school_dist_abbrv",
    "school_dist_desc", "fire_dist_abbrv", "fire_dist_desc", "water_dist_abbrv", "water_dist_desc",
    "sewer_dist_abbrv", "sewer_dist_desc", "sanit_dist_abbrv", "sanit_dist_desc", "rescue_dist_abbrv",
    "rescue_dist_desc", "munic_dist_abbrv", "munic_dist_desc", "dist_1_abbrv", "dist_1_desc", "dist_2_abbrv",
    "dist_2_desc", "confidential_ind", "birth_year", "ncid", "vtd_abbrv", "vtd_desc",
]
HISTORY_COLUMNS = [
    "county_id", "county_desc", "voter_reg_num", "election_lbl", "election_desc", "voting_method",
    "voted_party_cd", "voted_party_desc", "pct_label", "pct_description", "ncid", "voted_county_id",
    "voted_county_desc", "vtd_label", "vtd_description",
]
# Voting-method labels drifted in 2022 (formats.md §1.5); shares per era.
METHODS_BEFORE_2022 = [("IN-PERSON", 0.50), ("ABSENTEE ONESTOP", 0.37), ("ABSENTEE BY MAIL", 0.10),
                       ("PROVISIONAL", 0.015), ("CURBSIDE", 0.015)]
METHODS_2020_GENERAL = [("IN-PERSON", 0.20), ("ABSENTEE ONESTOP", 0.48), ("ABSENTEE BY MAIL", 0.29),
                        ("PROVISIONAL", 0.015), ("CURBSIDE", 0.015)]
METHODS_SINCE_2022 = [("ELECTION DAY IN-PERSON", 0.47), ("EARLY VOTING IN-PERSON", 0.40),
                      ("ABSENTEE BY MAIL", 0.09), ("PROVISIONAL", 0.01), ("EARLY VOTING CURBSIDE", 0.01),
                      ("ELECTION DAY CURBSIDE", 0.005), ("TRANSFER", 0.005)]
PARTY_DESC = {"DEM": "DEMOCRATIC", "REP": "REPUBLICAN", "UNA": "UNAFFILIATED", "LIB": "LIBERTARIAN",
              "GRE": "GREEN", "NLB": "NO LABELS", "JFA": "JUSTICE FOR ALL"}
MUNICIPALITY = {"RALEIGH": ("RAL", "RALEIGH"), "CARY": ("CARY", "CARY"), "DURHAM": ("DUR", "DURHAM"),
                "BAHAMA": ("", ""), "FAYETTEVILLE": ("FAY", "FAYETTEVILLE"), "HOPE MILLS": ("HOP", "HOPE MILLS")}


def _lookup(values, table: dict, default: str = "") -> pa.Array:
    return by_unique(values, lambda v: table.get(v, default))


def precinct_label(number: int) -> str:
    """NC precinct codes look like '01-07'."""
    return f"{number // 40 + 1:02d}-{number % 40 + 1:02d}"


def voter_fields(ctx: DropContext) -> dict[str, pa.Array | str]:
    """Every column of the voter file, by name (both vintages draw from this)."""
    profile = ctx.profile
    parts = address_parts(ctx, mixed_case=False)
    street_line = concat(parts.number, "  ", parts.street())
    # Trailing blanks pad a third of the unit-less lines, as in the state's file.
    padded = ctx.dwelling_ids() % 3 == 0
    res_line = choose(parts.has_unit, concat(street_line, "   #", parts.unit),
                      choose(padded, concat(street_line, "   "), street_line))
    res_line = parts.special(res_line)
    mail = mailing(ctx, parts, "NC")
    status = ctx.text("status_raw")
    reason = ctx.text("status_reason")
    status_desc = {s.raw: s.description for s in profile.statuses}
    reason_desc = {r: d for s in profile.statuses for r, d in s.reasons}
    confidential = parts.confidential
    registered = dates(ctx.column("registered_on"), "%m/%d/%Y")
    registered = choose(ctx.column("reg_placeholder"), profile.placeholder_registration, registered)
    birth_year = ctx.column("birth_date").astype("datetime64[Y]").astype(np.int64) + 1970
    precinct = precinct_numbers(ctx)
    precinct_code = by_unique(precinct, precinct_label)
    city = ctx.dwelling_text("city")
    muni = _lookup(city, {k: v[0] for k, v in MUNICIPALITY.items()})
    muni_desc = _lookup(city, {k: v[1] for k, v in MUNICIPALITY.items()})
    county_id = ctx.county("county_code")
    commissioner = by_unique(precinct % 5 + 1, str)
    age = by_unique(ctx.snapshot.year - birth_year, str)
    return {
        "county_id": county_id,
        "county_desc": ctx.county("county_name"),
        "voter_reg_num": zero_pad(ctx.column("county_local_id"), 12),
        "ncid": ctx.text("voter_id"),
        "last_name": ctx.text("last_name"),
        "first_name": ctx.text("first_name"),
        "middle_name": ctx.text("middle_name"),
        "name_suffix_lbl": ctx.text("name_suffix"),
        "status_cd": status,
        "voter_status_desc": _lookup(status, status_desc),
        "reason_cd": reason,
        "voter_status_reason_desc": _lookup(reason, reason_desc),
        "res_street_address": res_line,
        "res_city_desc": parts.city,
        "state_cd": choose(confidential, "", "NC"),
        "zip_code": parts.zip(ctx.column("zip9")),
        "mail_addr1": mail["line1"], "mail_addr2": "", "mail_addr3": "", "mail_addr4": "",
        "mail_city": mail["city"], "mail_state": mail["state"],
        "mail_zipcode": mail["zip"],
        "full_phone_number": ctx.phone(),
        "confidential_ind": choose(confidential, "Y", "N"),
        "registr_dt": registered,
        "race_code": ctx.text("race"),
        "ethnic_code": ctx.text("ethnic"),
        "party_cd": ctx.text("party_raw"),
        "gender_code": ctx.text("gender"),
        "birth_year": by_unique(birth_year, str),
        "age_at_year_end": age,
        "birth_age": age,
        "birth_state": ctx.text("birth_state"),
        "drivers_lic": ctx.text("drivers_lic"),
        "precinct_abbrv": precinct_code,
        "precinct_desc": concat("PRECINCT ", precinct_code),
        "municipality_abbrv": muni, "municipality_desc": muni_desc,
        "ward_abbrv": "", "ward_desc": "",
        "cong_dist_abbrv": ctx.district("cd119fp"),
        "super_court_abbrv": concat(county_id, "A"),
        "judic_dist_abbrv": county_id,
        "nc_senate_abbrv": ctx.district("sldust"),
        "nc_house_abbrv": ctx.district("sldlst"),
        "county_commiss_abbrv": commissioner,
        "county_commiss_desc": concat("COMMISSIONER DISTRICT ", commissioner),
        "township_abbrv": "", "township_desc": "",
        "school_dist_abbrv": "", "school_dist_desc": "",
        "fire_dist_abbrv": "", "fire_dist_desc": "",
        "water_dist_abbrv": "", "water_dist_desc": "",
        "sewer_dist_abbrv": "", "sewer_dist_desc": "",
        "sanit_dist_abbrv": "", "sanit_dist_desc": "",
        "rescue_dist_abbrv": "", "rescue_dist_desc": "",
        "munic_dist_abbrv": muni, "munic_dist_desc": muni_desc,
        "dist_1_abbrv": county_id, "dist_1_desc": concat("PROSECUTORIAL DISTRICT ", county_id),
        "dist_2_abbrv": "", "dist_2_desc": "", "absent_ind": "", "name_prefx_cd": "",
        "vtd_abbrv": precinct_code, "vtd_desc": precinct_code,
    }


def history_fields(ctx: DropContext) -> dict[str, pa.Array]:
    person, election, u = history_rows(ctx)
    codes = ctx.county("county_code", person)
    names = ctx.county("county_name", person)
    label = labels([e.on.strftime("%m/%d/%Y") for e in ctx.elections], election)
    description = labels([f"{e.on.strftime('%m/%d/%Y')} {e.label}" for e in ctx.elections], election)
    year = np.array([e.on.year for e in ctx.elections])[election]
    is_2020_general = np.array([e.on.year == 2020 and e.kind == "general" for e in ctx.elections])[election]
    method_names: list[str] = []
    method = np.zeros(len(person), dtype=np.int64)
    for era, table in (((year < 2022) & ~is_2020_general, METHODS_BEFORE_2022),
                       (is_2020_general, METHODS_2020_GENERAL), (year >= 2022, METHODS_SINCE_2022)):
        method[era] = len(method_names) + pick(u[era], [share for _, share in table])
        method_names.extend(m for m, _ in table)
    party = ctx.text("party_first_raw", person)
    primary = np.array([e.kind == "primary" for e in ctx.elections])[election]
    # Unaffiliated voters choose a party's ballot in a primary.
    una_choice = choose((u * 1000) % 1 < 0.47, "DEM", "REP")
    una = pc.equal(party, "UNA").to_numpy(zero_copy_only=False)
    party = choose(primary & una, una_choice, party)
    precinct_code = by_unique(precinct_numbers(ctx, person), precinct_label)
    return {
        "county_id": codes, "county_desc": names,
        "voter_reg_num": zero_pad(ctx.column("county_local_id", person), 12),
        "election_lbl": label,
        "election_desc": description,
        "voting_method": labels(method_names, method),
        "voted_party_cd": party,
        "voted_party_desc": _lookup(party, PARTY_DESC),
        "pct_label": precinct_code, "pct_description": concat("PRECINCT ", precinct_code),
        "ncid": ctx.text("voter_id", person),
        "voted_county_id": codes, "voted_county_desc": names,
        "vtd_label": precinct_code, "vtd_description": precinct_code,
    }


def write_current(ctx: DropContext) -> list[TextFile]:
    return _files(ctx, CURRENT_COLUMNS, quoting="none", encoding="latin-1")


def write_pre2022(ctx: DropContext) -> list[TextFile]:
    return _files(ctx, PRE2022_COLUMNS, quoting="all", encoding="utf-16", newline="\r\n")


def _files(ctx: DropContext, columns: list[str], quoting: str, encoding: str, newline: str = "\n") -> list[TextFile]:
    fields = voter_fields(ctx)
    voters = TextFile(
        name="ncvoter_Statewide.txt", columns=[fields[c] for c in columns], header=columns, sep="\t",
        quoting=quoting, encoding=encoding, newline=newline, damage=ctx.damage,
        date_column=columns.index("registr_dt"), zip_column=columns.index("zip_code"),
        text_column=columns.index("last_name"), bad_date="02/30/2019", row_ids=ctx.column("voter_id"),
        meta={"kind": "voters"})
    hist = history_fields(ctx)
    history = TextFile(name="ncvhis_Statewide.txt", columns=[hist[c] for c in HISTORY_COLUMNS],
                       header=HISTORY_COLUMNS, sep="\t", quoting=quoting, encoding=encoding, newline=newline,
                       meta={"kind": "history"})
    return [voters, history]
