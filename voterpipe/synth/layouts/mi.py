"""Michigan QVF: `EntireStateVoters.csv` + `EntireStateVoterHistory.csv`, or the legacy fixed width.

formats.md §4: comma CSV with header, Latin-1, the address in pieces (EXTENSION holds the unit);
year of birth only; no party; status A/V/C/CH/R; a few GENDER values 1/2. The legacy files are
`entire_state_v.lst` (520-character lines, positions in §4.3), `entire_state_h.lst` and
`electionscd.lst`. CSV dates are written MM/DD/YYYY (the real CSV's format is unconfirmed, §4.1),
fixed-width dates MMDDYYYY.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from voterpipe.synth.layouts.common import (
    DropContext, address_parts, by_unique, election_dates, history_rows, precinct_numbers)
from voterpipe.synth.render import TextFile, choose, concat, dates, text

PERM_AV_SPLIT = date(2024, 8, 1)  # IS_PERMANENT_ABSENTEE_VOTER replaced by two columns after July 2024
STATUS_REASON_RENAME = date(2022, 9, 1)  # CANCELLATION_REASON became STATUS_REASON


def voter_columns(snapshot: date) -> list[str]:
    absentee = (["IS_PERM_AV_BALLOT_VOTER", "IS_PERM_AV_APP_VOTER"] if snapshot >= PERM_AV_SPLIT
                else ["IS_PERMANENT_ABSENTEE_VOTER"])
    reason = "STATUS_REASON" if snapshot >= STATUS_REASON_RENAME else "CANCELLATION_REASON"
    return [
        "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "NAME_SUFFIX", "YEAR_OF_BIRTH", "GENDER", "REGISTRATION_DATE",
        "STREET_NUMBER_PREFIX", "STREET_NUMBER", "STREET_NUMBER_SUFFIX", "DIRECTION_PREFIX", "STREET_NAME",
        "STREET_TYPE", "DIRECTION_SUFFIX", "EXTENSION", "CITY", "STATE", "ZIP_CODE",
        "MAILING_ADDRESS_LINE_ONE", "MAILING_ADDRESS_LINE_TWO", "MAILING_ADDRESS_LINE_THREE",
        "MAILING_ADDRESS_LINE_FOUR", "MAILING_ADDRESS_LINE_FIVE", "VOTER_IDENTIFICATION_NUMBER", "COUNTY_CODE",
        "COUNTY_NAME", "JURISDICTION_CODE", "JURISDICTION_NAME", "PRECINCT", "WARD", "SCHOOL_DISTRICT_CODE",
        "SCHOOL_DISTRICT_NAME", "STATE_HOUSE_DISTRICT_CODE", "STATE_HOUSE_DISTRICT_NAME",
        "STATE_SENATE_DISTRICT_CODE", "STATE_SENATE_DISTRICT_NAME", "US_CONGRESS_DISTRICT_CODE",
        "US_CONGRESS_DISTRICT_NAME", "COUNTY_COMMISSIONER_DISTRICT_CODE", "COUNTY_COMMISSIONER_DISTRICT_NAME",
        "VILLAGE_DISTRICT_CODE", "VILLAGE_DISTRICT_NAME", "VILLAGE_PRECINCT", "SCHOOL_PRECINCT",
        *absentee, "VOTER_STATUS_TYPE_CODE", "UOCAVA_STATUS_CODE", "UOCAVA_STATUS_NAME", reason,
        "STATUS_DATE", "STATUS_USER_CODE", "VOTER_ID",
    ]


HISTORY_COLUMNS = ["VOTER_IDENTIFICATION_NUMBER", "COUNTY_CODE", "COUNTY_NAME", "JURISDICTION_CODE",
                   "JURISDICTION_NAME", "SCHOOL_DISTRICT_CODE", "SCHOOL_DISTRICT_NAME", "ELECTION_DATE",
                   "IS_ABSENTEE_VOTER"]
# (field, width) of entire_state_v.lst, formats.md §4.3.
FIXED_LAYOUT = [
    ("LAST_NAME", 35), ("FIRST_NAME", 20), ("MIDDLE_NAME", 20), ("NAME_SUFFIX", 3), ("YEAR_OF_BIRTH", 4),
    ("GENDER", 1), ("REGISTRATION_DATE", 8), ("STREET_NUMBER_PREFIX", 1), ("STREET_NUMBER", 7),
    ("STREET_NUMBER_SUFFIX", 4), ("DIRECTION_PREFIX", 2), ("STREET_NAME", 30), ("STREET_TYPE", 6),
    ("DIRECTION_SUFFIX", 2), ("EXTENSION", 13), ("CITY", 35), ("STATE", 2), ("ZIP_CODE", 5),
    ("MAIL_ADDR_1", 50), ("MAIL_ADDR_2", 50), ("MAIL_ADDR_3", 50), ("MAIL_ADDR_4", 50), ("MAIL_ADDR_5", 50),
    ("VOTER_ID", 13), ("COUNTY_CODE", 2), ("JURISDICTION_CODE", 5), ("WARD_PRECINCT", 6),
    ("SCHOOL_DISTRICT", 5), ("STATE_HOUSE", 5), ("STATE_SENATE", 5), ("US_CONGRESS", 5),
    ("COUNTY_COMMISSIONER", 5), ("VILLAGE_CODE", 5), ("VILLAGE_PRECINCT", 6), ("SCHOOL_PRECINCT", 6),
    ("PERMANENT_ABSENTEE_IND", 1), ("VOTER_STATUS_TYPE_CODE", 2), ("UOCAVA_STATUS", 1),
]
HISTORY_LAYOUT = [("VOTER_ID", 13), ("COUNTY_CODE", 2), ("JURISDICTION_CODE", 5), ("SCHOOL_DISTRICT", 5),
                  ("ELECTION_CODE", 13), ("ABSENTEE", 1)]
ELECTION_LAYOUT = [("ELECTION_CODE", 13), ("ELECTION_DATE", 8), ("TITLE", 25)]
UOCAVA = {"N": "NON-UOCAVA", "M": "MILITARY", "C": "CIVILIAN OVERSEAS"}


def _city_index(ctx: DropContext, rows: np.ndarray | None = None) -> np.ndarray:
    city = ctx.dwelling("city", rows).astype(object)
    first_city = np.array([c.cities[0] for c in ctx.profile.counties], dtype=object)
    return np.where(city == first_city[ctx.column("county_index", rows).astype(np.int64)], 0, 1)


def _jurisdiction(ctx: DropContext, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    county = ctx.county("county_code", rows)
    city_index = _city_index(ctx, rows)
    key = county + ":" + city_index.astype(str).astype(object)
    codes = by_unique(key, lambda k: f"{int(k.split(':')[0]):02d}{int(k.split(':')[1]) + 1:03d}")
    cities = ctx.dwelling("city", rows).astype(object)
    return codes, by_unique(cities, lambda c: f"CITY OF {c}")


def _school(ctx: DropContext, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    county = ctx.county("county_code", rows)
    key = county + ":" + _city_index(ctx, rows).astype(str).astype(object)
    codes = by_unique(key, lambda k: f"{int(k.split(':')[0]):02d}{int(k.split(':')[1]) + 1:02d}0")
    return codes, by_unique(ctx.dwelling("city", rows).astype(object), lambda c: f"{c} PUBLIC SCHOOLS")


def _fields(ctx: DropContext, fixed: bool) -> dict:
    parts = address_parts(ctx, mixed_case=not fixed)
    if fixed:  # six characters hold no spelled-out street type
        parts.street_type = text(ctx.dwelling("street_type").astype(object))
        parts.street_type = choose(parts.kind == "street", parts.street_type, "")
    special = parts.kind != "street"
    street_name = choose(special, parts.special_line, parts.name)
    gender = ctx.column("gender").astype(object)
    odd_gender = ctx.column("seq") % 2000 == 7  # about 40 rows statewide carry 1/2 (formats.md §4.1)
    gender = np.where(odd_gender & (gender == "M"), "1", np.where(odd_gender & (gender == "F"), "2", gender))
    birth_year = ctx.column("birth_date").astype("datetime64[Y]").astype(np.int64) + 1970
    mail_kind = ctx.column("mail_kind")
    box = (mail_kind == "po_box") & (parts.kind != "confidential")
    city = ctx.dwelling("city").astype(object)
    zip5 = ctx.dwelling("zip5").astype(object)
    mail1 = choose(box, concat("PO BOX ", text(ctx.column("box_number").astype(str))), "")
    mail2 = choose(box, text(by_unique(city + "|" + zip5, lambda k: f"{k.split('|')[0]}, MI {k.split('|')[1]}")), "")
    jurisdiction, jurisdiction_name = _jurisdiction(ctx)
    school, school_name = _school(ctx)
    precinct = precinct_numbers(ctx)
    ward = precinct // 20 + 1
    precinct_in_ward = precinct % 20 + 1
    status = ctx.column("status_raw").astype(object)
    uocava = np.where(ctx.column("seq") % 250 == 3, "M", np.where(ctx.column("seq") % 250 == 5, "C", "N")).astype(object)
    perm_av = np.where(ctx.column("propensity") > 0.8, "Y", "N").astype(object)
    house = by_unique(ctx.dwelling("sldlst"), lambda v: str(int(v)))
    senate = by_unique(ctx.dwelling("sldust"), lambda v: str(int(v)))
    congress = by_unique(ctx.dwelling("cd119fp"), lambda v: str(int(v)))
    commissioner = by_unique(precinct % 7 + 1, str)
    date_format = "%m%d%Y" if fixed else "%m/%d/%Y"
    removed = np.isin(status, ["C", "R"])
    return {
        "LAST_NAME": text(ctx.column("last_name")), "FIRST_NAME": text(ctx.column("first_name")),
        "MIDDLE_NAME": text(ctx.column("middle_name")), "NAME_SUFFIX": text(ctx.column("name_suffix")),
        "YEAR_OF_BIRTH": text(by_unique(birth_year, str)), "GENDER": text(gender),
        "REGISTRATION_DATE": dates(ctx.column("registered_on"), date_format),
        "STREET_NUMBER_PREFIX": "", "STREET_NUMBER": parts.number, "STREET_NUMBER_SUFFIX": "",
        "DIRECTION_PREFIX": parts.pre_dir, "STREET_NAME": street_name, "STREET_TYPE": parts.street_type,
        "DIRECTION_SUFFIX": parts.post_dir, "EXTENSION": parts.secondary(), "CITY": parts.city,
        "STATE": choose(parts.kind == "confidential", "", "MI"), "ZIP_CODE": parts.zip5,
        "MAILING_ADDRESS_LINE_ONE": mail1, "MAILING_ADDRESS_LINE_TWO": mail2, "MAILING_ADDRESS_LINE_THREE": "",
        "MAILING_ADDRESS_LINE_FOUR": "", "MAILING_ADDRESS_LINE_FIVE": "",
        "MAIL_ADDR_1": mail1, "MAIL_ADDR_2": mail2, "MAIL_ADDR_3": "", "MAIL_ADDR_4": "", "MAIL_ADDR_5": "",
        "VOTER_IDENTIFICATION_NUMBER": text(ctx.column("voter_id")), "VOTER_ID": text(ctx.column("voter_id")),
        "COUNTY_CODE": text(ctx.county("county_code")), "COUNTY_NAME": text(ctx.county("county_name")),
        "JURISDICTION_CODE": text(jurisdiction), "JURISDICTION_NAME": text(jurisdiction_name),
        "PRECINCT": text(by_unique(precinct_in_ward, str)), "WARD": text(by_unique(ward, lambda w: f"{w:02d}")),
        "WARD_PRECINCT": text(by_unique(ward * 1000 + precinct_in_ward, lambda v: f"{v // 1000:02d}{v % 1000:03d}")),
        "SCHOOL_DISTRICT_CODE": text(school), "SCHOOL_DISTRICT_NAME": text(school_name), "SCHOOL_DISTRICT": text(school),
        "STATE_HOUSE_DISTRICT_CODE": text(house),
        "STATE_HOUSE_DISTRICT_NAME": text(by_unique(house, lambda v: f"{v}{_ordinal_suffix(int(v))} DISTRICT")),
        "STATE_SENATE_DISTRICT_CODE": text(senate),
        "STATE_SENATE_DISTRICT_NAME": text(by_unique(senate, lambda v: f"{v}{_ordinal_suffix(int(v))} DISTRICT")),
        "US_CONGRESS_DISTRICT_CODE": text(congress),
        "US_CONGRESS_DISTRICT_NAME": text(by_unique(congress, lambda v: f"{v}{_ordinal_suffix(int(v))} DISTRICT")),
        "COUNTY_COMMISSIONER_DISTRICT_CODE": text(commissioner),
        "COUNTY_COMMISSIONER_DISTRICT_NAME": text(by_unique(commissioner, lambda v: f"DISTRICT {v}")),
        "STATE_HOUSE": text(house), "STATE_SENATE": text(senate), "US_CONGRESS": text(congress),
        "COUNTY_COMMISSIONER": text(commissioner),
        "VILLAGE_DISTRICT_CODE": "", "VILLAGE_DISTRICT_NAME": "", "VILLAGE_CODE": "", "VILLAGE_PRECINCT": "",
        "SCHOOL_PRECINCT": "",
        "IS_PERMANENT_ABSENTEE_VOTER": text(perm_av), "IS_PERM_AV_BALLOT_VOTER": text(perm_av),
        "IS_PERM_AV_APP_VOTER": text(perm_av), "PERMANENT_ABSENTEE_IND": text(perm_av),
        "VOTER_STATUS_TYPE_CODE": text(status), "UOCAVA_STATUS_CODE": text(uocava), "UOCAVA_STATUS": text(uocava),
        "UOCAVA_STATUS_NAME": text(by_unique(uocava, lambda u: UOCAVA[u])),
        "STATUS_REASON": text(np.where(removed, np.where(status == "C", "MOVED", "REJECTED"), "")),
        "CANCELLATION_REASON": text(np.where(removed, np.where(status == "C", "MOVED", "REJECTED"), "")),
        "STATUS_DATE": choose(removed, dates(ctx.column("registered_on"), date_format), ""),
        "STATUS_USER_CODE": "",
    }


def _ordinal_suffix(n: int) -> str:
    return "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")


def _absentee(ctx: DropContext, election: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Absentee share rose sharply from 2020 (no-excuse absentee voting)."""
    year = np.array([e.on.year for e in ctx.elections])[election]
    return np.where(u < np.where(year >= 2020, 0.55, 0.25), "Y", "N").astype(object)


def write_csv(ctx: DropContext) -> list[TextFile]:
    columns = voter_columns(ctx.snapshot)
    fields = _fields(ctx, fixed=False)
    voters = TextFile(
        name="EntireStateVoters.csv", columns=[fields[c] for c in columns], header=columns, sep=",",
        quoting="minimal", encoding="latin-1", damage=ctx.damage,
        date_column=columns.index("REGISTRATION_DATE"), zip_column=columns.index("ZIP_CODE"),
        text_column=columns.index("LAST_NAME"), bad_date="02/30/2019", row_ids=ctx.column("voter_id"),
        meta={"kind": "voters"})
    person, election, u = history_rows(ctx)
    jurisdiction, jurisdiction_name = _jurisdiction(ctx, person)
    school, school_name = _school(ctx, person)
    history = TextFile(
        name="EntireStateVoterHistory.csv", header=HISTORY_COLUMNS, sep=",", quoting="minimal", encoding="latin-1",
        columns=[text(ctx.people["voter_id"].to_numpy()[person]), text(ctx.county("county_code", person)),
                 text(ctx.county("county_name", person)), text(jurisdiction), text(jurisdiction_name),
                 text(school), text(school_name), dates(election_dates(ctx, election), "%m/%d/%Y"),
                 text(_absentee(ctx, election, u))],
        meta={"kind": "history"})
    return [voters, history]


def election_code(on: date, index: int) -> str:
    return f"{on.strftime('%Y%m%d')}{index:05d}"


def write_fixed(ctx: DropContext) -> list[TextFile]:
    fields = _fields(ctx, fixed=True)
    names = [name for name, _ in FIXED_LAYOUT]
    voters = TextFile(
        name="entire_state_v.lst", columns=[fields[n] for n in names], widths=[w for _, w in FIXED_LAYOUT],
        encoding="latin-1", damage=ctx.damage, date_column=names.index("REGISTRATION_DATE"),
        zip_column=names.index("ZIP_CODE"), text_column=names.index("LAST_NAME"), bad_date="02302019",
        row_ids=ctx.column("voter_id"), meta={"kind": "voters"})
    person, election, u = history_rows(ctx)
    codes = np.array([election_code(e.on, k) for k, e in enumerate(ctx.elections)], dtype=object)
    jurisdiction, _ = _jurisdiction(ctx, person)
    school, _ = _school(ctx, person)
    history = TextFile(
        name="entire_state_h.lst", widths=[w for _, w in HISTORY_LAYOUT], encoding="latin-1",
        columns=[text(ctx.people["voter_id"].to_numpy()[person]), text(ctx.county("county_code", person)),
                 text(jurisdiction), text(school), text(codes[election]), text(_absentee(ctx, election, u))],
        meta={"kind": "history"})
    elections = TextFile(
        name="electionscd.lst", widths=[w for _, w in ELECTION_LAYOUT], encoding="latin-1",
        columns=[text(codes), pa.array([e.on.strftime("%m%d%Y") for e in ctx.elections], pa.string()),
                 pa.array([e.label for e in ctx.elections], pa.string())],
        meta={"kind": "elections"})
    return [voters, history, elections]
