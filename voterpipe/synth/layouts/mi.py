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

import pyarrow.compute as pc

from voterpipe.synth.layouts.common import (
    DropContext, address_parts, by_unique, dates, history_rows, labels, precinct_numbers)
from voterpipe.synth.render import TextFile, choose, concat

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
    """0 for the county's first city, 1 for its second."""
    first_city = pa.array([c.cities[0] for c in ctx.profile.counties], type=pa.string())
    first = first_city.take(pa.array(ctx.county_index(rows)))
    same = pc.equal(ctx.dwelling_text("city", rows), first).to_numpy(zero_copy_only=False)
    return np.where(same, 0, 1)


def _jurisdiction(ctx: DropContext, rows: np.ndarray | None = None) -> tuple[pa.Array, pa.Array]:
    """(JURISDICTION_CODE, JURISDICTION_NAME): one jurisdiction per city."""
    key = ctx.county_index(rows) * 10 + _city_index(ctx, rows)
    counties = ctx.profile.counties
    code = by_unique(key, lambda k: f"{int(counties[k // 10].county_code):02d}{k % 10 + 1:03d}")
    name = by_unique(key, lambda k: f"CITY OF {counties[k // 10].cities[k % 10]}")
    return code, name


def _school(ctx: DropContext, rows: np.ndarray | None = None) -> tuple[pa.Array, pa.Array]:
    key = ctx.county_index(rows) * 10 + _city_index(ctx, rows)
    counties = ctx.profile.counties
    code = by_unique(key, lambda k: f"{int(counties[k // 10].county_code):02d}{k % 10 + 1:02d}0")
    name = by_unique(key, lambda k: f"{counties[k // 10].cities[k % 10]} PUBLIC SCHOOLS")
    return code, name


def _district_name(values: pa.Array) -> pa.Array:
    return by_unique(values, lambda v: f"{v}{_ordinal_suffix(int(v))} DISTRICT" if v else "")


def _fields(ctx: DropContext, fixed: bool) -> dict:
    parts = address_parts(ctx, mixed_case=not fixed)
    if fixed:  # six characters hold no spelled-out street type
        parts.street_type = choose(parts.street_kind, ctx.dwelling_text("street_type"), "")
    street_name = choose(parts.street_kind, parts.name, parts.special_line)
    gender = ctx.text("gender")
    odd_gender = ctx.column("seq") % 2000 == 7  # about 40 rows statewide carry 1/2 (formats.md §4.1)
    gender = choose(odd_gender, by_unique(gender, lambda g: {"M": "1", "F": "2"}.get(g, g)), gender)
    birth_year = ctx.column("birth_date").astype("datetime64[Y]").astype(np.int64) + 1970
    box = ctx.is_value("mail_kind", "po_box") & ~parts.confidential
    mail1 = choose(box, by_unique(ctx.column("box_number").astype(np.int64), lambda b: f"PO BOX {b}"), "")
    # "LANSING, MI 48910": the comma makes the CSV writer quote the field.
    mail2 = choose(box, concat(ctx.dwelling_text("city"), ", MI ", ctx.dwelling_text("zip5")), "")
    jurisdiction, jurisdiction_name = _jurisdiction(ctx)
    school, school_name = _school(ctx)
    precinct = precinct_numbers(ctx)
    ward = precinct // 20 + 1
    precinct_in_ward = precinct % 20 + 1
    status = ctx.text("status_raw")
    seq = ctx.column("seq")
    uocava = choose(seq % 250 == 3, "M", choose(seq % 250 == 5, "C", "N"))
    perm_av = choose(ctx.column("propensity") > 0.8, "Y", "N")
    house = ctx.district("sldlst", pad=False)
    senate = ctx.district("sldust", pad=False)
    congress = ctx.district("cd119fp", pad=False)
    commissioner = by_unique(precinct % 7 + 1, str)
    date_format = "%m%d%Y" if fixed else "%m/%d/%Y"
    cancelled = ctx.is_value("status_raw", "C")
    rejected = ctx.is_value("status_raw", "R")
    reason = choose(cancelled, "MOVED", choose(rejected, "REJECTED", ""))
    return {
        "LAST_NAME": ctx.text("last_name"), "FIRST_NAME": ctx.text("first_name"),
        "MIDDLE_NAME": ctx.text("middle_name"), "NAME_SUFFIX": ctx.text("name_suffix"),
        "YEAR_OF_BIRTH": by_unique(birth_year, str), "GENDER": gender,
        "REGISTRATION_DATE": dates(ctx.column("registered_on"), date_format),
        "STREET_NUMBER_PREFIX": "", "STREET_NUMBER": parts.number, "STREET_NUMBER_SUFFIX": "",
        "DIRECTION_PREFIX": parts.pre_dir, "STREET_NAME": street_name, "STREET_TYPE": parts.street_type,
        "DIRECTION_SUFFIX": parts.post_dir, "EXTENSION": parts.secondary(), "CITY": parts.city,
        "STATE": choose(parts.confidential, "", "MI"), "ZIP_CODE": parts.zip5,
        "MAILING_ADDRESS_LINE_ONE": mail1, "MAILING_ADDRESS_LINE_TWO": mail2, "MAILING_ADDRESS_LINE_THREE": "",
        "MAILING_ADDRESS_LINE_FOUR": "", "MAILING_ADDRESS_LINE_FIVE": "",
        "MAIL_ADDR_1": mail1, "MAIL_ADDR_2": mail2, "MAIL_ADDR_3": "", "MAIL_ADDR_4": "", "MAIL_ADDR_5": "",
        "VOTER_IDENTIFICATION_NUMBER": ctx.text("voter_id"), "VOTER_ID": ctx.text("voter_id"),
        "COUNTY_CODE": ctx.county("county_code"), "COUNTY_NAME": ctx.county("county_name"),
        "JURISDICTION_CODE": jurisdiction, "JURISDICTION_NAME": jurisdiction_name,
        "PRECINCT": by_unique(precinct_in_ward, str), "WARD": by_unique(ward, lambda w: f"{w:02d}"),
        "WARD_PRECINCT": by_unique(ward * 1000 + precinct_in_ward, lambda v: f"{v // 1000:02d}{v % 1000:03d}"),
        "SCHOOL_DISTRICT_CODE": school, "SCHOOL_DISTRICT_NAME": school_name, "SCHOOL_DISTRICT": school,
        "STATE_HOUSE_DISTRICT_CODE": house, "STATE_HOUSE_DISTRICT_NAME": _district_name(house),
        "STATE_SENATE_DISTRICT_CODE": senate, "STATE_SENATE_DISTRICT_NAME": _district_name(senate),
        "US_CONGRESS_DISTRICT_CODE": congress, "US_CONGRESS_DISTRICT_NAME": _district_name(congress),
        "COUNTY_COMMISSIONER_DISTRICT_CODE": commissioner,
        "COUNTY_COMMISSIONER_DISTRICT_NAME": by_unique(precinct % 7 + 1, lambda v: f"DISTRICT {v}"),
        "STATE_HOUSE": house, "STATE_SENATE": senate, "US_CONGRESS": congress, "COUNTY_COMMISSIONER": commissioner,
        "VILLAGE_DISTRICT_CODE": "", "VILLAGE_DISTRICT_NAME": "", "VILLAGE_CODE": "", "VILLAGE_PRECINCT": "",
        "SCHOOL_PRECINCT": "",
        "IS_PERMANENT_ABSENTEE_VOTER": perm_av, "IS_PERM_AV_BALLOT_VOTER": perm_av,
        "IS_PERM_AV_APP_VOTER": perm_av, "PERMANENT_ABSENTEE_IND": perm_av,
        "VOTER_STATUS_TYPE_CODE": status, "UOCAVA_STATUS_CODE": uocava, "UOCAVA_STATUS": uocava,
        "UOCAVA_STATUS_NAME": by_unique(uocava, lambda u: UOCAVA[u]),
        "STATUS_REASON": reason, "CANCELLATION_REASON": reason,
        "STATUS_DATE": choose(cancelled | rejected, dates(ctx.column("registered_on"), date_format), ""),
        "STATUS_USER_CODE": "",
    }


def _ordinal_suffix(n: int) -> str:
    return "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")


def _absentee(ctx: DropContext, election: np.ndarray, u: np.ndarray) -> pa.Array:
    """Absentee share rose sharply from 2020 (no-excuse absentee voting)."""
    year = np.array([e.on.year for e in ctx.elections])[election]
    return choose(u < np.where(year >= 2020, 0.55, 0.25), "Y", "N")


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
        columns=[ctx.text("voter_id", person), ctx.county("county_code", person),
                 ctx.county("county_name", person), jurisdiction, jurisdiction_name, school, school_name,
                 labels([e.on.strftime("%m/%d/%Y") for e in ctx.elections], election),
                 _absentee(ctx, election, u)],
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
    codes = [election_code(e.on, k) for k, e in enumerate(ctx.elections)]
    jurisdiction, _ = _jurisdiction(ctx, person)
    school, _ = _school(ctx, person)
    history = TextFile(
        name="entire_state_h.lst", widths=[w for _, w in HISTORY_LAYOUT], encoding="latin-1",
        columns=[ctx.text("voter_id", person), ctx.county("county_code", person), jurisdiction, school,
                 labels(codes, election), _absentee(ctx, election, u)],
        meta={"kind": "history"})
    elections = TextFile(
        name="electionscd.lst", widths=[w for _, w in ELECTION_LAYOUT], encoding="latin-1",
        columns=[pa.array(codes, pa.string()), pa.array([e.on.strftime("%m%d%Y") for e in ctx.elections], pa.string()),
                 pa.array([e.label for e in ctx.elections], pa.string())],
        meta={"kind": "elections"})
    return [voters, history, elections]
