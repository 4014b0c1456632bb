"""Florida extract: per county `<CCC>_<YYYYMMDD>.txt` (38 columns) and `<CCC>_H_<YYYYMMDD>.txt` (5).

formats.md §3: TAB, no header; dates MM/DD/YYYY; race digits 1-9; status ACT/INA/PRE; exempt
voters have protected fields blank or '*'; Residence State often blank; ZIPs 5 or 9 digits.
History codes A/B/E/F/N/P/Y/Z; election types PPP/PRI/RUN/GEN/OTH.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from voterpipe.synth.layouts.common import (
    DropContext, address_parts, by_unique, election_dates, history_rows, mailing, pick, precinct_numbers)
from voterpipe.synth.render import TextFile, choose, dates, text

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
    exempt = parts.kind == "confidential"
    race = ctx.column("race")
    race_code = by_unique(race, lambda r: RACE_CODES.get(r, "9"))
    race_code = np.where(ctx.column("ethnic") == "HL", "4", race_code).astype(object)
    phone = ctx.column("phone").astype(object)
    real_phone = np.array([len(p) == 10 for p in phone]) if len(phone) else np.zeros(0, bool)
    precinct = precinct_numbers(ctx)
    state_blank = (ctx.column("seq") % 4 == 0) | exempt  # Residence State is often left blank
    fields = {
        "County Code": text(ctx.county("county_code")),
        "Voter ID": text(ctx.column("voter_id")),
        "Name Last": choose(exempt, "", text(ctx.column("last_name"))),
        "Name Suffix": choose(exempt, "", text(ctx.column("name_suffix"))),
        "Name First": choose(exempt, "", text(ctx.column("first_name"))),
        "Name Middle": choose(exempt, "", text(ctx.column("middle_name"))),
        "Requested public records exemption": choose(exempt, "Y", choose(ctx.column("seq") % 2 == 0, "N", "")),
        "Residence Address Line 1": parts.line(),
        "Residence Address Line 2": parts.secondary(),
        "Residence City (USPS)": parts.city,
        "Residence State": choose(state_blank, "", "FL"),
        "Residence Zipcode": choose(exempt, "*", parts.zip(ctx.column("zip9"))),
        "Mailing Address Line 1": mail["line1"], "Mailing Address Line 2": "", "Mailing Address Line 3": "",
        "Mailing City": mail["city"], "Mailing State": mail["state"], "Mailing Zipcode": mail["zip"],
        "Mailing Country": "",
        "Gender": text(ctx.column("gender")),
        "Race": text(race_code),
        "Birth Date": choose(exempt, "", dates(ctx.column("birth_date"), "%m/%d/%Y")),
        "Registration Date": dates(ctx.column("registered_on"), "%m/%d/%Y"),
        "Party Affiliation": text(ctx.column("party_raw")),
        "Precinct": text(by_unique(precinct, lambda p: str(100 + p))),
        "Precinct Group": "", "Precinct Split": text(by_unique(precinct, lambda p: f"{100 + p}.0")),
        "Precinct Suffix": "",
        "Voter Status": text(ctx.column("status_raw")),
        "Congressional District": text(by_unique(ctx.dwelling("cd119fp"), lambda v: str(int(v)))),
        "House District": text(by_unique(ctx.dwelling("sldlst"), lambda v: str(int(v)))),
        "Senate District": text(by_unique(ctx.dwelling("sldust"), lambda v: str(int(v)))),
        "County Commission District": text(by_unique(precinct % 5 + 1, str)),
        "School Board District": text(by_unique(precinct % 5 + 1, str)),
        "Daytime Area Code": text(np.where(real_phone & ~exempt, [p[:3] for p in phone], "")),
        "Daytime Phone Number": text(np.where(real_phone & ~exempt, [p[3:] for p in phone], "")),
        "Daytime Phone Extension": "", "Email address": "",
    }
    columns = [fields[c] for c in COLUMNS]
    county_index = ctx.column("county_index").astype(np.int64)

    person, election, u = history_rows(ctx)
    people_county = ctx.people["county_index"].to_numpy().astype(np.int64)
    codes = np.array([code for code, _ in HISTORY_CODES], dtype=object)
    history_code = codes[pick(u, [s for _, s in HISTORY_CODES])]
    elect_date = dates(election_dates(ctx, election), "%m/%d/%Y")
    elect_type = np.array([e.label for e in ctx.elections], dtype=object)[election]
    history = {"person": person, "code": history_code, "date": elect_date, "type": elect_type}
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
        mine = np.flatnonzero(people_county[history["person"]] == index)
        who = history["person"][mine]
        h_person = who
        h_date = history["date"].take(pa.array(mine))
        h_type = history["type"][mine]
        h_code = history["code"][mine]
        if index == N_REPORTING_COUNTY and len(non_voters[0]):
            h_person = np.concatenate([who, non_voters[0]])
            h_date = pa.concat_arrays([h_date, non_voters[1]])
            h_type = np.concatenate([h_type, non_voters[2]])
            h_code = np.concatenate([h_code, np.full(len(non_voters[0]), "N", dtype=object)])
        files.append(TextFile(
            name=f"{code}_H_{stamp}.txt",
            columns=[code, text(ctx.people["voter_id"].to_numpy()[h_person]), h_date, text(h_type), text(h_code)],
            header=None, sep="\t", encoding="latin-1", meta={"kind": "history", "county": code}))
    return files


def _non_voter_rows(ctx: DropContext) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """Code N rows (did not vote) for written voters of the reporting county, latest general only."""
    people = ctx.people
    rows = ctx.rows[people["county_index"].to_numpy()[ctx.rows] == N_REPORTING_COUNTY]
    registered = people["registered_on"].to_numpy().astype("datetime64[D]")
    h = ctx.history
    persons, days, labels = [], [], []
    generals = [k for k, e in enumerate(ctx.elections) if e.kind == "general"]
    for k, election in enumerate(ctx.elections):
        if k not in generals[-1:]:
            continue
        voted = np.zeros(len(people), dtype=bool)
        voted[h["person"].to_numpy()[h["election"].to_numpy() == k]] = True
        missing = rows[~voted[rows] & (registered[rows] < np.datetime64(election.on, "D"))]
        persons.append(missing)
        days.append(np.full(len(missing), np.datetime64(election.on, "D")))
        labels.append(np.full(len(missing), election.label, dtype=object))
    if not persons:
        return np.zeros(0, np.int64), pa.array([], pa.string()), np.zeros(0, object)
    return (np.concatenate(persons), dates(np.concatenate(days), "%m/%d/%Y"), np.concatenate(labels))
