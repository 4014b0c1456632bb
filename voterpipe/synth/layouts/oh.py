"""Ohio SWVF: comma CSV, every field quoted, header, Latin-1, wide history columns.

formats.md §2: files SWVF_1_22 (counties 1-22) and SWVF_23_44 (23-44); history is one column per
election, `GENERAL-11/08/2016`, cells blank / X / party letter; dates YYYY-MM-DD with the
placeholder 1900-01-01; status ACTIVE or CONFIRMATION; no gender or race.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.synth.layouts.common import DropContext, address_parts, by_unique, mailing, precinct_numbers
from voterpipe.synth.render import TextFile, choose, dates, text

FIXED_COLUMNS = [
    "SOS_VOTERID", "COUNTY_NUMBER", "COUNTY_ID", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX",
    "DATE_OF_BIRTH", "REGISTRATION_DATE", "VOTER_STATUS", "PARTY_AFFILIATION", "RESIDENTIAL_ADDRESS1",
    "RESIDENTIAL_SECONDARY_ADDR", "RESIDENTIAL_CITY", "RESIDENTIAL_STATE", "RESIDENTIAL_ZIP",
    "RESIDENTIAL_ZIP_PLUS4", "RESIDENTIAL_COUNTRY", "RESIDENTIAL_POSTALCODE", "MAILING_ADDRESS1",
    "MAILING_SECONDARY_ADDRESS", "MAILING_CITY", "MAILING_STATE", "MAILING_ZIP", "MAILING_ZIP_PLUS4",
    "MAILING_COUNTRY", "MAILING_POSTAL_CODE", "CAREER_CENTER", "CITY", "CITY_SCHOOL_DISTRICT",
    "COUNTY_COURT_DISTRICT", "CONGRESSIONAL_DISTRICT", "COURT_OF_APPEALS", "EDU_SERVICE_CENTER_DISTRICT",
    "EXEMPTED_VILL_SCHOOL_DISTRICT", "LIBRARY", "LOCAL_SCHOOL_DISTRICT", "MUNICIPAL_COURT_DISTRICT",
    "PRECINCT_NAME", "PRECINCT_CODE", "STATE_BOARD_OF_EDUCATION", "STATE_REPRESENTATIVE_DISTRICT",
    "STATE_SENATE_DISTRICT", "TOWNSHIP", "VILLAGE", "WARD",
]
FILE_GROUPS = (("SWVF_1_22.txt", 1, 22), ("SWVF_23_44.txt", 23, 44), ("SWVF_45_66.txt", 45, 66),
               ("SWVF_67_88.txt", 67, 88))
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def precinct_code(county_number: str, number: int) -> str:
    """NNAAA: the county number and three letters."""
    return f"{county_number}{LETTERS[number // 676 % 26]}{LETTERS[number // 26 % 26]}{LETTERS[number % 26]}"


def history_columns(ctx: DropContext) -> tuple[list[str], list[pa.Array], int]:
    """One column per election, oldest first: '' / 'X' / the primary ballot's party letter."""
    position = np.full(len(ctx.people), -1, dtype=np.int64)
    position[ctx.rows] = np.arange(len(ctx.rows))
    h = ctx.history
    person = h["person"].to_numpy()
    written = position[person] >= 0
    party = ctx.people["party_first_raw"].to_numpy()
    names, columns, cells = [], [], 0
    for k, election in enumerate(ctx.elections):
        hit = written & (h["election"].to_numpy() == k)
        who = position[person[hit]]
        cell = np.full(len(ctx.rows), "", dtype=object)
        if election.kind == "primary":
            letters = party[person[hit]]
            cell[who] = np.where(letters == "", "X", letters)
        else:
            cell[who] = "X"
        names.append(f"{election.label}-{election.on.strftime('%m/%d/%Y')}")
        columns.append(text(cell))
        cells += int(hit.sum())
    return names, columns, cells


def write_swvf(ctx: DropContext) -> list[TextFile]:
    parts = address_parts(ctx)
    mail = mailing(ctx, parts, "OH")
    county_number = ctx.county("county_code")
    registered = dates(ctx.column("registered_on"), "%Y-%m-%d")
    registered = choose(ctx.column("reg_placeholder"), "1900-01-01", registered)
    precinct = precinct_numbers(ctx)
    precinct_codes = by_unique(county_number + ":" + precinct.astype(str).astype(object),
                               lambda key: precinct_code(key.split(":")[0], int(key.split(":")[1])))
    city = ctx.dwelling("city").astype(object)
    has_zip4 = ctx.column("zip9") & (parts.kind == "street")
    fields = {
        "SOS_VOTERID": text(ctx.column("voter_id")),
        "COUNTY_NUMBER": text(county_number),
        "COUNTY_ID": text(by_unique(ctx.column("county_local_id"), str)),
        "LAST_NAME": text(ctx.column("last_name")),
        "FIRST_NAME": text(ctx.column("first_name")),
        "MIDDLE_NAME": text(ctx.column("middle_name")),
        "SUFFIX": text(ctx.column("name_suffix")),
        "DATE_OF_BIRTH": dates(ctx.column("birth_date"), "%Y-%m-%d"),
        "REGISTRATION_DATE": registered,
        "VOTER_STATUS": text(ctx.column("status_raw")),
        "PARTY_AFFILIATION": text(ctx.column("party_raw")),
        "RESIDENTIAL_ADDRESS1": parts.line(),
        "RESIDENTIAL_SECONDARY_ADDR": parts.secondary(),
        "RESIDENTIAL_CITY": parts.city,
        "RESIDENTIAL_STATE": choose(parts.kind == "confidential", "", "OH"),
        "RESIDENTIAL_ZIP": parts.zip5,
        "RESIDENTIAL_ZIP_PLUS4": choose(has_zip4, parts.zip4, ""),
        "RESIDENTIAL_COUNTRY": "", "RESIDENTIAL_POSTALCODE": "",
        "MAILING_ADDRESS1": mail["line1"], "MAILING_SECONDARY_ADDRESS": "",
        "MAILING_CITY": mail["city"], "MAILING_STATE": mail["state"], "MAILING_ZIP": mail["zip"],
        "MAILING_ZIP_PLUS4": "", "MAILING_COUNTRY": "", "MAILING_POSTAL_CODE": "",
        "CAREER_CENTER": "", "CITY": text(by_unique(city, lambda c: c if c else "")),
        "CITY_SCHOOL_DISTRICT": text(by_unique(city, lambda c: f"{c} CITY SD" if c else "")),
        "COUNTY_COURT_DISTRICT": "",
        # Integers, not zero-padded, in the SOS file.
        "CONGRESSIONAL_DISTRICT": text(by_unique(ctx.dwelling("cd119fp"), lambda v: str(int(v)))),
        "COURT_OF_APPEALS": "10", "EDU_SERVICE_CENTER_DISTRICT": "", "EXEMPTED_VILL_SCHOOL_DISTRICT": "",
        "LIBRARY": "", "LOCAL_SCHOOL_DISTRICT": "", "MUNICIPAL_COURT_DISTRICT": "",
        "PRECINCT_NAME": text(by_unique(precinct_codes, lambda c: f"PRECINCT {c[2:]}")),
        "PRECINCT_CODE": text(precinct_codes),
        "STATE_BOARD_OF_EDUCATION": "",
        "STATE_REPRESENTATIVE_DISTRICT": text(by_unique(ctx.dwelling("sldlst"), lambda v: str(int(v)))),
        "STATE_SENATE_DISTRICT": text(by_unique(ctx.dwelling("sldust"), lambda v: str(int(v)))),
        "TOWNSHIP": "", "VILLAGE": "", "WARD": "",
    }
    history_names, history_cells, _ = history_columns(ctx)
    header = FIXED_COLUMNS + history_names
    columns = [fields[c] for c in FIXED_COLUMNS] + history_cells
    number = county_number.astype(np.int64)
    files = []
    for name, low, high in FILE_GROUPS:
        in_group = np.flatnonzero((number >= low) & (number <= high))
        if not len(in_group):
            continue
        take = pa.array(in_group)
        group_history = sum(int(pc.sum(pc.not_equal(c.take(take), "")).as_py() or 0)
                            for c in history_cells)
        files.append(TextFile(
            name=name, columns=[c if isinstance(c, str) else c.take(take) for c in columns], header=header,
            sep=",", quoting="all", encoding="latin-1", newline="\n", damage=ctx.damage[in_group],
            date_column=FIXED_COLUMNS.index("REGISTRATION_DATE"), zip_column=FIXED_COLUMNS.index("RESIDENTIAL_ZIP"),
            text_column=FIXED_COLUMNS.index("LAST_NAME"), bad_date="2019-02-30",
            row_ids=ctx.column("voter_id")[in_group],
            meta={"kind": "voters_with_history", "history_cells": group_history}))
    return files
