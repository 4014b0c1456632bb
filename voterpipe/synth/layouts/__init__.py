"""State file layouts: each turns a DropContext into the TextFiles of that state's real delivery."""

from __future__ import annotations

import importlib
from typing import Callable

from voterpipe.synth.layouts.common import DropContext
from voterpipe.synth.render import TextFile

LAYOUTS = {
    "nc_current": ("nc", "write_current"),
    "nc_pre2022": ("nc", "write_pre2022"),
    "oh_swvf": ("oh", "write_swvf"),
    "fl_extract": ("fl", "write_extract"),
    "mi_csv": ("mi", "write_csv"),
    "mi_fixed": ("mi", "write_fixed"),
    "wa_vrdb": ("wa", "write_vrdb"),
}


def layout_writer(layout: str) -> Callable[[DropContext], list[TextFile]]:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown synthetic layout {layout!r}; known: {sorted(LAYOUTS)}")
    module, function = LAYOUTS[layout]
    return getattr(importlib.import_module(f"voterpipe.synth.layouts.{module}"), function)
