"""Ohio SWVF: comma CSV, every field quoted, header, Latin-1, wide history columns.

formats.md §2: files SWVF_1_22 (counties 1-22) and SWVF_23_44 (23-44); history is one column per
election, `GENERAL-11/08/2016`, cells blank / X / party letter; dates YYYY-MM-DD with the
placeholder 1900-01-01; status ACTIVE or CONFIRMATION; no gender or race.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.synth.layouts.common import DropContext, address_parts, by_unique, dates, mailing, precinct_numbers
from voterpipe.synth.render import TextFile, choose

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
    party = ctx.text("party_first_raw")  # in file order
    voted_letter = choose(pc.equal(party, "").to_numpy(zero_copy_only=False), "X", party)
    names, columns, cells = [], [], 0
    for k, election in enumerate(ctx.elections):
        hit = written & (h["election"].to_numpy() == k)
        voted = np.zeros(len(ctx.rows), dtype=bool)
        voted[position[person[hit]]] = True
        columns.append(choose(voted, voted_letter if election.kind == "primary" else "X", ""))
        names.append(f"{election.label}-{election.on.strftime('%m/%d/%Y')}")
        cells += int(hit.sum())
    return names, columns, cells


def write_swvf(ctx: DropContext) -> list[TextFile]:
    parts = address_parts(ctx)
    mail = mailing(ctx, parts, "OH")
    county_index = ctx.county_index()
    county_number = np.array([c.county_code for c in ctx.profile.counties], dtype=object)[county_index]
    registered = dates(ctx.column("registered_on"), "%Y-%m-%d")
    registered = choose(ctx.column("reg_placeholder"), "1900-01-01", registered)
    precinct = precinct_numbers(ctx)
    precinct_codes = by_unique(county_index * 100_000 + precinct,
                               lambda key: precinct_code(ctx.profile.counties[key // 100_000].county_code,
                                                         key % 100_000))
    city = ctx.dwelling_text("city")
    has_zip4 = ctx.column("zip9") & parts.street_kind
    fields = {
        "SOS_VOTERID": ctx.text("voter_id"),
        "COUNTY_NUMBER": ctx.county("county_code"),
        "COUNTY_ID": by_unique(ctx.column("county_local_id"), str),
        "LAST_NAME": ctx.text("last_name"),
        "FIRST_NAME": ctx.text("first_name"),
        "MIDDLE_NAME": ctx.text("middle_name"),
        "SUFFIX": ctx.text("name_suffix"),
        "DATE_OF_BIRTH": dates(ctx.column("birth_date"), "%Y-%m-%d"),
        "REGISTRATION_DATE": registered,
        "VOTER_STATUS": ctx.text("status_raw"),
        "PARTY_AFFILIATION": ctx.text("party_raw"),
        "RESIDENTIAL_ADDRESS1": parts.line(),
        "RESIDENTIAL_SECONDARY_ADDR": parts.secondary(),
        "RESIDENTIAL_CITY": parts.city,
        "RESIDENTIAL_STATE": choose(parts.confidential, "", "OH"),
        "RESIDENTIAL_ZIP": parts.zip5,
        "RESIDENTIAL_ZIP_PLUS4": choose(has_zip4, parts.zip4, ""),
        "RESIDENTIAL_COUNTRY": "", "RESIDENTIAL_POSTALCODE": "",
        "MAILING_ADDRESS1": mail["line1"], "MAILING_SECONDARY_ADDRESS": "",
        "MAILING_CITY": mail["city"], "MAILING_STATE": mail["state"], "MAILING_ZIP": mail["zip"],
        "MAILING_ZIP_PLUS4": "", "MAILING_COUNTRY": "", "MAILING_POSTAL_CODE": "",
        "CAREER_CENTER": "", "CITY": city,
        "CITY_SCHOOL_DISTRICT": by_unique(city, lambda c: f"{c} CITY SD" if c else ""),
        "COUNTY_COURT_DISTRICT": "",
        # Integers, not zero-padded, in the SOS file.
        "CONGRESSIONAL_DISTRICT": ctx.district("cd119fp", pad=False),
        "COURT_OF_APPEALS": "10", "EDU_SERVICE_CENTER_DISTRICT": "", "EXEMPTED_VILL_SCHOOL_DISTRICT": "",
        "LIBRARY": "", "LOCAL_SCHOOL_DISTRICT": "", "MUNICIPAL_COURT_DISTRICT": "",
        "PRECINCT_NAME": by_unique(precinct_codes, lambda c: f"PRECINCT {c[2:]}"),
        "PRECINCT_CODE": precinct_codes,
        "STATE_BOARD_OF_EDUCATION": "",
        "STATE_REPRESENTATIVE_DISTRICT": ctx.district("sldlst", pad=False),
        "STATE_SENATE_DISTRICT": ctx.district("sldust", pad=False),
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
