"""Florida extract: per county `<CCC>_<YYYYMMDD>.txt` (38 columns) and `<CCC>_H_<YYYYMMDD>.txt` (5).

formats.md §3: TAB, no header; dates MM/DD/YYYY; race digits 1-9; status ACT/INA/PRE; exempt
voters have protected fields blank or '*'; Residence State often blank; ZIPs 5 or 9 digits.
History codes A/B/E/F/N/P/Y/Z; election types PPP/PRI/RUN/GEN/OTH.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

import pyarrow.compute as pc

from voterpipe.synth.layouts.common import (
    DropContext, address_parts, by_unique, dates, history_rows, labels, mailing, pick, precinct_numbers)
from voterpipe.synth.render import TextFile, choose

COLUMNS = [
    "County Code", "Voter ID", "Name Last", "Name Suffix", "Name First", "Name Middle",
    "Requested public records exemption", "Residence Address Line 1", "Residence Address Line 2",
    "Residence City (USPS)", "Residence State", "Residence Zipcode", "Mailing Address Line 1",
    "Mailing Address Line 2", "Mailing Address Line 3", "Mailing City", "Mailing State", "Mailing Zipcode",
    "Mailing Country", "Gender", "Race", "Birth Date", "Registration Date", "Party Affiliation", "Precinct",
    "Precinct Group", "Precinct Split", "Precinct Suffix", "Voter Status", "Congressional District",
    "House District", "Senate District", "County Commission District", "School Board District",
    "Daytime Area Code", "Daytime Phone Number", "Daytime Phone Extension", "Email address",
]
HISTORY_COLUMNS = ["County Code", "Voter ID", "Election Date", "Election Type", "History Code"]
RACE_CODES = {"I": "1", "A": "2", "P": "2", "B": "3", "W": "5", "O": "6", "M": "7", "U": "9"}
# History codes: A absentee, E early, Y polls, F provisional early, Z provisional at poll,
# B absentee not counted, P provisional not counted.
HISTORY_CODES = [("Y", 0.42), ("E", 0.30), ("A", 0.25), ("F", 0.004), ("Z", 0.006), ("B", 0.012), ("P", 0.008)]
N_REPORTING_COUNTY = 0  # only some counties list non-voters with code N


def _county_files(ctx: DropContext) -> list[tuple[int, str]]:
    return [(i, c.county_code) for i, c in enumerate(ctx.profile.counties)]


def write_extract(ctx: DropContext) -> list[TextFile]:
    stamp = ctx.snapshot.strftime("%Y%m%d")
    parts = address_parts(ctx)
    mail = mailing(ctx, parts, "FL")
    exempt = parts.confidential
    race_code = choose(ctx.is_value("ethnic", "HL"), "4", by_unique(ctx.text("race"), lambda r: RACE_CODES.get(r, "9")))
    phone = ctx.phone()
    real_phone = (pc.utf8_length(phone).to_numpy(zero_copy_only=False) == 10) & ~exempt
    precinct = precinct_numbers(ctx)
    state_blank = (ctx.column("seq") % 4 == 0) | exempt  # Residence State is often left blank
    commission = by_unique(precinct % 5 + 1, str)
    fields = {
        "County Code": ctx.county("county_code"),
        "Voter ID": ctx.text("voter_id"),
        "Name Last": choose(exempt, "", ctx.text("last_name")),
        "Name Suffix": choose(exempt, "", ctx.text("name_suffix")),
        "Name First": choose(exempt, "", ctx.text("first_name")),
        "Name Middle": choose(exempt, "", ctx.text("middle_name")),
        "Requested public records exemption": choose(exempt, "Y", choose(ctx.column("seq") % 2 == 0, "N", "")),
        "Residence Address Line 1": parts.line(),
        "Residence Address Line 2": parts.secondary(),
        "Residence City (USPS)": parts.city,
        "Residence State": choose(state_blank, "", "FL"),
        "Residence Zipcode": choose(exempt, "*", parts.zip(ctx.column("zip9"))),
        "Mailing Address Line 1": mail["line1"], "Mailing Address Line 2": "", "Mailing Address Line 3": "",
        "Mailing City": mail["city"], "Mailing State": mail["state"], "Mailing Zipcode": mail["zip"],
        "Mailing Country": "",
        "Gender": ctx.text("gender"),
        "Race": race_code,
        "Birth Date": choose(exempt, "", dates(ctx.column("birth_date"), "%m/%d/%Y")),
        "Registration Date": dates(ctx.column("registered_on"), "%m/%d/%Y"),
        "Party Affiliation": ctx.text("party_raw"),
        "Precinct": by_unique(precinct, lambda p: str(100 + p)),
        "Precinct Group": "", "Precinct Split": by_unique(precinct, lambda p: f"{100 + p}.0"),
        "Precinct Suffix": "",
        "Voter Status": ctx.text("status_raw"),
        "Congressional District": ctx.district("cd119fp", pad=False),
        "House District": ctx.district("sldlst", pad=False),
        "Senate District": ctx.district("sldust", pad=False),
        "County Commission District": commission,
        "School Board District": commission,
        "Daytime Area Code": choose(real_phone, pc.utf8_slice_codeunits(phone, 0, 3), ""),
        "Daytime Phone Number": choose(real_phone, pc.utf8_slice_codeunits(phone, 3, 10), ""),
        "Daytime Phone Extension": "", "Email address": "",
    }
    columns = [fields[c] for c in COLUMNS]
    county_index = ctx.county_index()

    person, election, u = history_rows(ctx)
    people_county = ctx.people["county_index"].to_numpy().astype(np.int64)
    history_code = pick(u, [s for _, s in HISTORY_CODES])
    n_code = len(HISTORY_CODES)
    non_voters = _non_voter_rows(ctx)

    files = []
    for index, code in _county_files(ctx):
        rows = np.flatnonzero(county_index == index)
        take = pa.array(rows)
        files.append(TextFile(
            name=f"{code}_{stamp}.txt", columns=[c if isinstance(c, str) else c.take(take) for c in columns],
            header=None, sep="\t", encoding="latin-1", damage=ctx.damage[rows],
            date_column=COLUMNS.index("Registration Date"), zip_column=COLUMNS.index("Residence Zipcode"),
            text_column=COLUMNS.index("Name Last"), bad_date="02/30/2019", row_ids=ctx.column("voter_id")[rows],
            meta={"kind": "voters", "county": code}))
        mine = np.flatnonzero(people_county[person] == index)
        h_person, h_election, h_code = person[mine], election[mine], history_code[mine]
        if index == N_REPORTING_COUNTY and len(non_voters[0]):
            h_person = np.concatenate([h_person, non_voters[0]])
            h_election = np.concatenate([h_election, non_voters[1]])
            h_code = np.concatenate([h_code, np.full(len(non_voters[0]), n_code)])
        files.append(TextFile(
            name=f"{code}_H_{stamp}.txt",
            columns=[code, ctx.text("voter_id", h_person),
                     labels([e.on.strftime("%m/%d/%Y") for e in ctx.elections], h_election),
                     labels([e.label for e in ctx.elections], h_election),
                     labels([c for c, _ in HISTORY_CODES] + ["N"], h_code)],
            header=None, sep="\t", encoding="latin-1", meta={"kind": "history", "county": code}))
    return files


def _non_voter_rows(ctx: DropContext) -> tuple[np.ndarray, np.ndarray]:
    """Code N rows (did not vote) for written voters of the reporting county, latest general only."""
    people = ctx.people
    rows = ctx.rows[people["county_index"].to_numpy()[ctx.rows] == N_REPORTING_COUNTY]
    registered = people["registered_on"].to_numpy().astype("datetime64[D]")
    generals = [k for k, e in enumerate(ctx.elections) if e.kind == "general"]
    if not generals:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k = generals[-1]
    h = ctx.history
    voted = np.zeros(len(people), dtype=bool)
    voted[h["person"].to_numpy()[h["election"].to_numpy() == k]] = True
    missing = rows[~voted[rows] & (registered[rows] < np.datetime64(ctx.elections[k].on, "D"))]
    return missing, np.full(len(missing), k, dtype=np.int64)
