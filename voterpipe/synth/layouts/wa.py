"""Washington quirk the layout TOML cannot say: LastVoted, the day of a voter's latest vote.

formats.md §5. File names, the seed-chosen delimiter (TAB or PIPE) and the Birthyear/Birthdate
vintages are in config/formats/wa_vrdb.toml.
"""

from __future__ import annotations

import numpy as np

from voterpipe.synth.layouts.common import election_dates
from voterpipe.synth.layouts.values import Frame, source


@source("wa.last_voted")
def last_voted(f: Frame) -> np.ndarray:
    h = f.ctx.history
    person = h["person"].to_numpy()
    days = election_dates(f.ctx, h["election"].to_numpy())
    latest = np.full(len(f.ctx.people), np.datetime64("NaT"), dtype="datetime64[D]")
    order = np.argsort(days, kind="stable")
    latest[person[order]] = days[order]  # later elections overwrite earlier ones
    return latest[f.rows]
