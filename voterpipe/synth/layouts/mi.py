"""Michigan quirks the layout TOML cannot say: jurisdictions and school districts per city, wards.

formats.md §4. One jurisdiction (and school district) per city of the county; precincts are
numbered within wards; about 40 rows statewide carry GENDER 1/2 instead of M/F (§4.1).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.synth.layouts.common import by_unique
from voterpipe.synth.layouts.values import SOURCES, Frame, source
from voterpipe.synth.render import choose


def _city_key(f: Frame) -> np.ndarray:
    """county index * 10 + 0 for the county's first city, 1 for its second."""
    counties = f.ctx.profile.counties
    first = pa.array([c.cities[0] for c in counties], type=pa.string()).take(pa.array(f.ctx.county_index(f.rows)))
    same = pc.equal(f.ctx.dwelling_text("city", f.rows), first).to_numpy(zero_copy_only=False)
    return f.ctx.county_index(f.rows) * 10 + np.where(same, 0, 1)


def _by_city(f: Frame, make) -> pa.Array:
    counties = f.ctx.profile.counties
    return by_unique(_city_key(f), lambda k: make(counties[k // 10], k % 10))


source("mi.jurisdiction_code")(lambda f: _by_city(f, lambda c, i: f"{int(c.county_code):02d}{i + 1:03d}"))
source("mi.jurisdiction_name")(lambda f: _by_city(f, lambda c, i: f"CITY OF {c.cities[i]}"))
source("mi.school_code")(lambda f: _by_city(f, lambda c, i: f"{int(c.county_code):02d}{i + 1:02d}0"))
source("mi.school_name")(lambda f: _by_city(f, lambda c, i: f"{c.cities[i]} PUBLIC SCHOOLS"))
source("mi.ward")(lambda f: by_unique(np.asarray(SOURCES["precinct"](f)) // 20 + 1, lambda w: f"{w:02d}"))
source("mi.precinct_in_ward")(lambda f: by_unique(np.asarray(SOURCES["precinct"](f)) % 20 + 1, str))
source("mi.ward_precinct")(lambda f: by_unique(np.asarray(SOURCES["precinct"](f)),
                                               lambda p: f"{p // 20 + 1:02d}{p % 20 + 1:03d}"))
source("mi.permanent_absentee")(lambda f: choose(f.column("propensity") > 0.8, "Y", "N"))


@source("mi.gender")
def gender(f: Frame) -> pa.Array:
    values = f.text("gender")
    odd = f.column("seq") % 2000 == 7
    return choose(odd, by_unique(values, lambda g: {"M": "1", "F": "2"}.get(g, g)), values)


@source("mi.status_reason")
def status_reason(f: Frame) -> pa.Array:
    return choose(f.is_value("status_raw", "C"), "MOVED", choose(f.is_value("status_raw", "R"), "REJECTED", ""))
