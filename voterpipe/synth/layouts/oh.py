"""Ohio quirk the layout TOML cannot say: precinct codes are the county number and three letters.

formats.md §2. Everything else of the SWVF (quoting, county file groups, wide history columns,
placeholder dates) is in config/formats/oh_swvf.toml.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from voterpipe.synth.layouts.common import by_unique
from voterpipe.synth.layouts.values import SOURCES, Frame, source

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def precinct_code(county_number: str, number: int) -> str:
    """NNAAA: the county number and three letters."""
    return f"{county_number}{LETTERS[number // 676 % 26]}{LETTERS[number // 26 % 26]}{LETTERS[number % 26]}"


@source("oh.precinct")
def precinct(f: Frame) -> pa.Array:
    counties = f.ctx.profile.counties
    key = f.ctx.county_index(f.rows) * 100_000 + np.asarray(SOURCES["precinct"](f))
    return by_unique(key, lambda k: precinct_code(counties[k // 100_000].county_code, k % 100_000))
