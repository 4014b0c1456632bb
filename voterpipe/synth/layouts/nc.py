"""North Carolina quirks the layout TOML cannot say: the street line's spacing, precinct codes, party ballots.

formats.md §1: `res_street_address` has two spaces after the number and the unit after three
spaces and a '#'; precinct codes look like '01-07'; unaffiliated voters choose a party's ballot
in a primary.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.synth.layouts.common import by_unique
from voterpipe.synth.layouts.values import SOURCES, Frame, source
from voterpipe.synth.render import choose, concat


@source("nc.street_line")
def street_line(f: Frame) -> pa.Array:
    parts = f.parts
    line = concat(parts.number, "  ", parts.street())
    # Trailing blanks pad a third of the unit-less lines, as in the state's file.
    padded = f.ctx.dwelling_ids(f.rows) % 3 == 0
    line = choose(parts.has_unit, concat(line, "   #", parts.unit), choose(padded, concat(line, "   "), line))
    return parts.special(line)


@source("nc.precinct")
def precinct(f: Frame) -> pa.Array:
    return by_unique(SOURCES["precinct"](f), lambda n: f"{n // 40 + 1:02d}-{n % 40 + 1:02d}")


@source("nc.party_ballot")
def party_ballot(f: Frame) -> pa.Array:
    party = f.text("party_first_raw")
    primary = f.elections(lambda e: e.kind.endswith("primary")).astype(bool)
    unaffiliated = pc.equal(party, "UNA").to_numpy(zero_copy_only=False)
    return choose(primary & unaffiliated, choose((f.u * 1000) % 1 < 0.47, "DEM", "REP"), party)

