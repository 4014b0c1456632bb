"""Whether a raw drop is complete: every file its layout's [drop] table declares is there, and
either the sender's marker file (_READY) is present or no file has changed for settle_seconds.
"""

from __future__ import annotations

import re
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from voterpipe.formats.archives import archive_members, is_zip
from voterpipe.formats.layouts import Layout, LayoutError

DEFAULT_MARKER = "_READY"
DROP_KEYS = {"files", "county_pattern", "counties"}


@dataclass(frozen=True)
class DropRule:
    """How a drop says it is complete ([drop] in luigi.cfg, per state in [drop.<state>])."""

    marker: str = DEFAULT_MARKER
    settle_seconds: float = 600.0  # 0: the marker is required
    partial_counties: bool = False  # a per-county layout may deliver only some counties


@dataclass
class DropStatus:
    """complete, or why not: declared files missing, files still changing."""

    directory: Path
    layout: str | None = None
    missing: list[str] = field(default_factory=list)
    growing: list[str] = field(default_factory=list)
    problem: str = ""  # no directory, no voter file, no marker

    @property
    def complete(self) -> bool:
        return not (self.missing or self.growing or self.problem)

    def reason(self) -> str:
        if self.complete:
            return f"raw drop {self.directory} is complete"
        parts = [self.problem] if self.problem else []
        if self.missing:
            parts.append("missing " + "; ".join(self.missing))
        if self.growing:
            parts.append("still changing " + "; ".join(self.growing))
        return f"raw drop {self.directory} is incomplete ({self.layout or 'no layout'}): " + " | ".join(parts)


@dataclass(frozen=True)
class DeclaredFiles:
    """A layout's [drop] table: the roles a complete drop holds, and for per-county deliveries
    the pattern giving a file's county and the county list."""

    roles: tuple[str, ...]
    county_pattern: re.Pattern | None = None
    counties: tuple[str, ...] = ()


def declared_files(layout: Layout) -> DeclaredFiles:
    """The layout's [drop] table; without one, every file kind the layout reads."""
    table = layout.drop
    where = layout.source.name
    unknown = set(table) - DROP_KEYS
    if unknown:
        raise LayoutError(f"{where}: [drop] has unknown keys {sorted(unknown)}")
    default = ["voters"] + (["history"] if layout.history is not None and layout.history.shape == "long" else [])
    roles = tuple(table.get("files", default + sorted(layout.aux)))
    known = {"voters", "history", *layout.aux}
    if set(roles) - known:
        raise LayoutError(f"{where}: [drop] files names unknown file kinds {sorted(set(roles) - known)}")
    pattern = table.get("county_pattern")
    if pattern is not None and "county" not in re.compile(pattern).groupindex:
        raise LayoutError(f"{where}: [drop] county_pattern needs a named group 'county'")
    return DeclaredFiles(roles, re.compile(pattern) if pattern else None, tuple(table.get("counties", ())))


def _spec(layout: Layout, role: str):
    return layout.voters if role == "voters" else layout.history if role == "history" else layout.aux[role]


def delivered_names(files: list[Path]) -> tuple[list[str], list[str]]:
    """(file names, a .zip standing for its members' names; archives that cannot be read yet)."""
    names, unreadable = [], []
    for path in files:
        if not is_zip(path):
            names.append(path.name)
            continue
        try:
            names += [member.name for member in archive_members(path)]
        except (zipfile.BadZipFile, OSError):
            unreadable.append(path.name)
    return names, unreadable


def data_files(directory: Path, marker: str) -> list[Path]:
    """The drop's files: not hidden (a copy in progress) and not the marker."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name != marker
                  and not any(part.startswith(".") for part in p.relative_to(directory).parts))


def choose_layout(names: list[str], layouts: list[Layout]) -> Layout | None:
    """The most preferred layout whose voter file pattern matches a file of the drop."""
    for layout in layouts:
        if any(layout.voters.matches_name(n) for n in names):
            return layout
    return None


def missing_files(names: list[str], layout: Layout, partial_counties: bool) -> list[str]:
    """Each declared kind of file the drop lacks, named with its patterns (or its counties)."""
    declared = declared_files(layout)
    matched = {role: [n for n in names if _spec(layout, role).matches_name(n)] for role in declared.roles}
    missing = [f"{role} file ({', '.join(_spec(layout, role).patterns)})"
               for role, found in matched.items() if not found]
    if declared.county_pattern is None:
        return missing
    by_role = {role: {m.group("county") for n in found if (m := declared.county_pattern.search(n))}
               for role, found in matched.items()}
    seen = set().union(*by_role.values()) if by_role else set()
    wanted = seen if partial_counties or not declared.counties else set(declared.counties) | seen
    for role, counties in by_role.items():
        if counties and wanted - counties:
            lacking = sorted(wanted - counties)
            shown = ", ".join(lacking[:10]) + (f" and {len(lacking) - 10} more" if len(lacking) > 10 else "")
            missing.append(f"{role} files of {len(lacking)} count{'y' if len(lacking) == 1 else 'ies'}: {shown}")
    return missing


def marker_options(path: Path) -> dict:
    """An empty marker, or TOML the sender wrote into it (partial_counties = true)."""
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    if not text:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}  # a marker with a note in it still marks the drop as complete


def check_drop(directory: Path, layouts: list[Layout], rule: DropRule, now: float | None = None) -> DropStatus:
    """Whether the drop in `directory` may be imported, and if not, which files are missing or still changing."""
    directory = Path(directory)
    status = DropStatus(directory)
    files = data_files(directory, rule.marker)
    if not files:
        status.problem = "the directory does not exist" if not directory.is_dir() else "no files yet"
        return status
    names, unreadable = delivered_names(files)
    layout = choose_layout(names, layouts)
    if unreadable:
        status.growing = [f"{name} (not a readable zip archive yet)" for name in unreadable]
    if layout is None:
        patterns = sorted({p for layout in layouts for p in layout.voters.patterns})
        status.problem = f"no voter file ({', '.join(patterns[:6])})"
        return status
    status.layout = layout.name
    marker = directory / rule.marker
    options = marker_options(marker) if marker.is_file() else {}
    status.missing = missing_files(names, layout, rule.partial_counties or bool(options.get("partial_counties")))
    now = time.time() if now is None else now
    if marker.is_file():
        # a file changed after the marker is not vouched for by it: it must settle like any other
        written = marker.stat().st_mtime
        status.growing += [f"{p.name} (modified {p.stat().st_mtime - written:.0f}s after the {rule.marker} marker "
                           f"and {max(0.0, now - p.stat().st_mtime):.0f}s ago)" for p in files
                           if p.stat().st_mtime > written + 1.0 and now - p.stat().st_mtime < max(rule.settle_seconds, 1)]
    elif rule.settle_seconds <= 0:
        status.problem = f"no {rule.marker} marker (settle_seconds = 0: the marker is required)"
    else:
        status.growing += [f"{p.name} (modified {max(0.0, now - p.stat().st_mtime):.0f}s ago; without a "
                           f"{rule.marker} marker a drop must be unchanged for {rule.settle_seconds:g}s)"
                           for p in files if now - p.stat().st_mtime < rule.settle_seconds]
    return status


def write_marker(directory: Path, layout: Layout, marker: str = DEFAULT_MARKER) -> Path:
    """Mark a drop complete (as `voterpipe synth` does); a per-county drop that does not hold
    every county of its layout is marked partial."""
    directory = Path(directory)
    names, _ = delivered_names(data_files(directory, marker))
    partial = bool(missing_files(names, layout, partial_counties=False)) and \
        not missing_files(names, layout, partial_counties=True)
    path = directory / marker
    path.write_text("partial_counties = true\n" if partial else "", encoding="utf-8")
    return path
