"""Layout drift made loud: how a delivered header differs from the closest known layout
(columns missing, unexpected, and moved out of the layout's order)."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

from voterpipe.formats.decoding import first_line
from voterpipe.formats.readers import sniff_delimiter, split_header

SHOWN = 12  # columns named per kind in a message


@dataclass(frozen=True)
class HeaderDiff:
    layout: str
    missing: tuple[str, ...]  # layout columns the header lacks
    unexpected: tuple[str, ...]  # header names no layout column (or alias, or wide election column) has
    moved: tuple[str, ...]  # layout columns present, but out of the layout's order

    @property
    def distance(self) -> tuple[int, int]:
        return len(self.missing) + len(self.unexpected), len(self.moved)

    def describe(self) -> str:
        def listed(names: tuple[str, ...]) -> str:
            return f"{list(names[:SHOWN])}{' ...' if len(names) > SHOWN else ''}"
        return (f"closest layout {self.layout}: missing {listed(self.missing)}, unexpected "
                f"{listed(self.unexpected)}, moved {listed(self.moved)}")


def header_names(path: Path, spec) -> list[str]:
    """The delivered header's names, split the way the layout's reader would."""
    line, _, _ = first_line(path, spec.encoding)
    delimiter = sniff_delimiter(line, list(spec.sniff_from)) if spec.delimiter == "sniff" else spec.delimiter
    return [name.strip().strip('"').strip() for name in split_header(line, delimiter, spec.quote)]


def header_diff(layout_name: str, spec, names: list[str], wide_pattern=None) -> HeaderDiff:
    """The column diff of one delivered header against one layout's file spec."""
    known = {column.lower(): column for column in spec.columns + spec.optional_columns}
    delivered, unexpected = [], []
    for name in names:
        column = known.get(spec.aliases.get(name.lower(), name).lower())
        if column is not None:
            delivered.append(column)
        elif not (wide_pattern and wide_pattern.match(name)):
            unexpected.append(name)
    present = set(delivered)
    expected = [column for column in spec.columns + spec.optional_columns if column in present]
    blocks = SequenceMatcher(None, expected, delivered, autojunk=False).get_matching_blocks()
    in_order = {column for block in blocks for column in delivered[block.b: block.b + block.size]}
    return HeaderDiff(layout_name, tuple(c for c in spec.columns if c not in present), tuple(unexpected),
                      tuple(c for c in delivered if c not in in_order))


def closest_layout(path: Path, candidates: list[tuple]) -> HeaderDiff | None:
    """The smallest diff among the (layout, spec, role) candidates that expect a header."""
    diffs = []
    for layout, spec, role in candidates:
        if spec.header is False or spec.fixed_width:
            continue
        wide = layout.wide_history if role == "voters" else None
        try:
            names = header_names(path, spec)
        except ValueError:
            continue
        diffs.append(header_diff(layout.name, spec, names, wide.wide["pattern"] if wide else None))
    return min(diffs, key=lambda d: d.distance) if diffs else None
