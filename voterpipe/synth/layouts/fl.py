"""Florida quirk the layout TOML cannot say: the race digit, where Hispanic ethnicity wins (4).

formats.md §3. File names per county, blanks for exempt voters, history codes and the
did-not-vote rows are in config/formats/fl_extract.toml.
"""

from __future__ import annotations

import pyarrow as pa

from voterpipe.synth.layouts.common import by_unique
from voterpipe.synth.layouts.values import Frame, source
from voterpipe.synth.render import choose

RACE_CODES = {"I": "1", "A": "2", "P": "2", "B": "3", "W": "5", "O": "6", "M": "7", "U": "9"}


@source("fl.race")
def race(f: Frame) -> pa.Array:
    return choose(f.is_value("ethnic", "HL"), "4", by_unique(f.text("race"), lambda r: RACE_CODES.get(r, "9")))
