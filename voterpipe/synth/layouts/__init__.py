"""Synthetic files in a state's layout: the generic writer reads config/formats/*.toml; state modules add hooks."""

from __future__ import annotations

from voterpipe.synth.layouts.common import DropContext
from voterpipe.synth.layouts.writer import damage_kinds, write_layout

__all__ = ["DropContext", "write_layout", "damage_kinds"]
