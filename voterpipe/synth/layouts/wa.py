"""Washington VRDB: `<YYYYMMDD>_VRDB_Extract.txt` and `<YYYYMMDD>_VotingHistoryExtract.txt`.

formats.md §5: header, Latin-1, TAB in older files and PIPE in 2024 (here: PIPE for odd seeds,
TAB for even ones, so the importer must sniff); address in pieces; Birthyear since August 2023
(Birthdate MM/DD/YYYY before); messy StatusCode values; no party; history has no type or method.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from voterpipe.synth.layouts.common import (
    DropContext, address_parts, by_unique, dates, election_dates, history_rows, labels, mailing, precinct_numbers)
from voterpipe.synth.render import TextFile, choose, text

BIRTHYEAR_SINCE = date(2023, 8, 1)


def voter_columns(snapshot: date) -> list[str]:
    birth = "Birthyear" if snapshot >= BIRTHYEAR_SINCE else "Birthdate"
    return [
        "StateVoterID", "FName", "MName", "LName", "NameSuffix", birth, "Gender", "RegStNum", "RegStFrac",
        "RegStName", "RegStType", "RegUnitType", "RegStPreDirection", "RegStPostDirection", "RegStUnitNum",
        "RegCity", "RegState", "RegZipCode", "CountyCode", "PrecinctCode", "PrecinctPart", "LegislativeDistrict",
        "CongressionalDistrict", "Mail1", "Mail2", "Mail3", "MailCity", "MailZip", "MailState", "MailCountry",
        "Registrationdate", "LastVoted", "StatusCode",
    ]


HISTORY_COLUMNS = ["VotingHistoryID", "CountyCode", "CountyCode_Voting", "StateVoterID", "ElectionDate"]


def delimiter_for(seed: int) -> str:
    return "|" if seed % 2 else "\t"


def write_vrdb(ctx: DropContext) -> list[TextFile]:
    stamp = ctx.snapshot.strftime("%Y%m%d")
    sep = delimiter_for(ctx.seed)
    columns = voter_columns(ctx.snapshot)
    parts = address_parts(ctx)
    mail = mailing(ctx, parts, "WA")
    birth = ctx.column("birth_date")
    precinct = precinct_numbers(ctx)

    person, election, _ = history_rows(ctx)
    days = election_dates(ctx, election)
    last_voted = np.full(len(ctx.people), np.datetime64("NaT"), dtype="datetime64[D]")
    order = np.argsort(days, kind="stable")
    last_voted[person[order]] = days[order]  # later elections overwrite earlier ones

    fields = {
        "StateVoterID": ctx.text("voter_id"),
        "FName": ctx.text("first_name"), "MName": ctx.text("middle_name"),
        "LName": ctx.text("last_name"), "NameSuffix": ctx.text("name_suffix"),
        "Birthyear": by_unique(birth.astype("datetime64[Y]").astype(np.int64) + 1970, str),
        "Birthdate": dates(birth, "%m/%d/%Y"),
        "Gender": ctx.text("gender"),
        "RegStNum": parts.number, "RegStFrac": "",
        "RegStName": choose(parts.street_kind, parts.name, parts.special_line), "RegStType": parts.street_type,
        "RegUnitType": parts.unit_type, "RegStPreDirection": parts.pre_dir, "RegStPostDirection": parts.post_dir,
        "RegStUnitNum": parts.unit, "RegCity": parts.city,
        "RegState": choose(parts.confidential, "", "WA"),
        "RegZipCode": parts.zip(ctx.column("zip9")),
        "CountyCode": ctx.county("county_code"),
        "PrecinctCode": by_unique(precinct, lambda p: str(1000 + p)),
        "PrecinctPart": by_unique(precinct, lambda p: f"{1000 + p}.{p % 3 + 1}"),
        "LegislativeDistrict": ctx.district("sldust", pad=False),
        "CongressionalDistrict": ctx.district("cd119fp", pad=False),
        "Mail1": mail["line1"], "Mail2": "", "Mail3": "", "MailCity": mail["city"], "MailZip": mail["zip"],
        "MailState": mail["state"], "MailCountry": "",
        "Registrationdate": dates(ctx.column("registered_on"), "%m/%d/%Y"),
        "LastVoted": dates(last_voted[ctx.rows], "%m/%d/%Y"),
        "StatusCode": ctx.text("status_raw"),
    }
    voters = TextFile(
        name=f"{stamp}_VRDB_Extract.txt", columns=[fields[c] for c in columns], header=columns, sep=sep,
        encoding="latin-1", damage=ctx.damage, date_column=columns.index("Registrationdate"),
        zip_column=columns.index("RegZipCode"), text_column=columns.index("LName"), bad_date="02/30/2019",
        row_ids=ctx.column("voter_id"), meta={"kind": "voters", "delimiter": sep})
    county = ctx.county("county_code", person)
    history = TextFile(
        name=f"{stamp}_VotingHistoryExtract.txt", header=HISTORY_COLUMNS, sep=sep, encoding="latin-1",
        columns=[text(pa.array(np.arange(1, len(person) + 1, dtype=np.int64) + 40_000_000)),
                 county, county, ctx.text("voter_id", person),
                 labels([e.on.strftime("%m/%d/%Y") for e in ctx.elections], election)],
        meta={"kind": "history", "delimiter": sep})
    return [voters, history]
