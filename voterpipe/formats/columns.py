"""Where every delivered column of a layout goes: a canonical field, the per-voter `extra` map, or
never_load with a reason. A column with none of these is a layout error the tests catch, and
`python -m voterpipe.formats.columns` prints the table that config/formats/README.md carries."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from voterpipe.formats.layouts import FileSpec, Layout, load_layouts


@dataclass(frozen=True)
class Destination:
    role: str  # voters / history / aux.<name>
    column: str
    goes_to: str | None  # "field a, b" / "extra" / "never_load: reason" / "lookup ..."; None = nowhere


def _readers(layout: Layout, role: str, spec: FileSpec) -> dict[str, list[str]]:
    """Layout column -> the canonical fields (or lookups) that read it."""
    readers: dict[str, list[str]] = {}
    for name, field_spec in spec.fields.items():
        if "lookup" in field_spec:
            readers.setdefault(field_spec["key"], []).append(f"{name} (key into {field_spec['lookup']})")
            continue
        for column in ([field_spec["column"]] if "column" in field_spec else
                       list(field_spec.get("join", [])) + list(field_spec.get("concat", []))):
            readers.setdefault(column, []).append(name)
    if role.startswith("aux.") and layout.history is not None:
        aux_name = role[4:]
        readers.setdefault(spec.key, []).append(f"lookup key of history {aux_name} lookups")
        for name, field_spec in layout.history.fields.items():
            if field_spec.get("lookup") == aux_name and "column" in field_spec:
                readers.setdefault(field_spec["column"], []).append(f"history {name}")
    return readers


def destinations(layout: Layout) -> list[Destination]:
    """Every column of every file of the layout, with where it goes."""
    out = []
    specs = [("voters", layout.voters)]
    if layout.history is not None and layout.history.shape == "long":
        specs.append(("history", layout.history))
    specs += [(f"aux.{name}", layout.aux[name]) for name in sorted(layout.aux)]
    for role, spec in specs:
        readers = _readers(layout, role, spec)
        for column in list(spec.columns) + [c for c in spec.optional_columns if c not in spec.columns]:
            if column in spec.never_load:
                reason = spec.never_load_reasons.get(column)
                goes_to = f"never_load: {reason}" if reason else None  # a reason is required
            elif column in readers:
                goes_to = "field " + ", ".join(readers[column])
            elif column in spec.extra:
                goes_to = "extra"
            elif column in spec.skip_values:
                goes_to = "skip rows"
            else:
                goes_to = None
            out.append(Destination(role, column, goes_to))
    return out


def without_destination(layout: Layout) -> list[str]:
    return [f"{d.role}.{d.column}" for d in destinations(layout) if d.goes_to is None]


def markdown(layouts: dict[str, Layout]) -> str:
    """One table per layout: column, file, where it goes."""
    parts = []
    for name in sorted(layouts):
        layout = layouts[name]
        parts.append(f"#### `{name}`\n\n| file | column | goes to |\n|---|---|---|")
        for d in destinations(layout):
            parts.append(f"| {d.role} | `{d.column}` | {d.goes_to or '**nowhere**'} |")
        if layout.wide_history is not None:
            parts.append("| voters | `TYPE-MM/DD/YYYY` (one per election) | history rows (wide) |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(markdown(load_layouts(sys.argv[1:] or None)))
