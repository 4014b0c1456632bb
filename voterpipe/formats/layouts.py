"""State file layouts as data: load config/formats/*.toml and tell which layout a raw file is in.

A layout file describes one delivery format of one state (see config/formats/README.md). Adding a
state or a new vintage means adding a file here, not code.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from voterpipe import SHIPPED_CONFIG_DIR, schema
from voterpipe.formats.drift import closest_layout
from voterpipe.formats.history_options import (
    OptionError, check_slots, latest_per_voter, packed_options, slot_columns, slot_options)
from voterpipe.formats.archives import file_size
from voterpipe.formats.decoding import first_line
from voterpipe.formats.readers import sniff_delimiter, split_header
from voterpipe.formats.repair import CODE_FIELDS, CodeForm

FORMATS_DIR_ENV = "VOTERPIPE_FORMATS_DIR"
DEFAULT_FORMATS_DIR = SHIPPED_CONFIG_DIR / "formats"
ROLES = ("voters", "history")
FIELD_KINDS = ("column", "join", "concat", "value", "lookup")
TRANSFORMS = {"codes", "date", "zip", "year", "extract", "placeholders", "default", "upper", "phone"}
# Canonical columns the importer fills itself.
AUTOMATIC = {"state", "snapshot", "source_file", "source_line"}


class LayoutError(ValueError):
    """A layout file is malformed, or a raw file matches no known layout."""


@dataclass(frozen=True)
class Canonical:
    """The state's canonical forms ([canonical]): code columns (voters, households, cohorts and the
    warehouse all use them) and whether its ZIPs begin with 0 (so 4 digits lost a leading zero)."""

    zip_leading_zero: bool = False
    code_forms: dict[str, CodeForm] = field(default_factory=dict)  # canonical field -> form


@dataclass(frozen=True)
class CodeTable:
    name: str
    exact: dict[str, str | None]  # upper-cased raw code -> normalised value
    contains: tuple[tuple[str, str], ...]  # first rule whose text occurs in the raw value wins
    default: str | None  # for a non-empty value no rule matched
    empty: str | None  # for an empty value


@dataclass(frozen=True)
class FileSpec:
    """How to read one kind of file (voters, history or an auxiliary table) of a layout."""

    role: str
    patterns: tuple[str, ...]
    encoding: str = "latin-1"
    delimiter: str | None = "\t"  # None for fixed width; "sniff" = pick one of sniff_from
    sniff_from: tuple[str, ...] = ("\t", "|", ",")
    quote: str = ""
    header: bool | str = True  # True, False or "detect"
    columns: tuple[str, ...] = ()
    optional_columns: tuple[str, ...] = ()
    never_load: frozenset[str] = frozenset()
    never_load_reasons: dict[str, str] = field(default_factory=dict)  # column -> why it is not loaded
    extra: tuple[str, ...] = ()  # voters: columns carried in the per-voter `extra` map
    aliases: dict[str, str] = field(default_factory=dict)  # lower-cased other name -> column
    placeholders: tuple[str, ...] = ()
    fixed_width: bool = False
    widths: tuple[tuple[str, int, int], ...] = ()
    line_length: tuple[int, int] = (0, 0)
    fields: dict[str, dict] = field(default_factory=dict)  # canonical column -> field spec
    skip_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    shape: str = "long"  # history only: long file, or wide columns inside the voter file
    wide: dict[str, Any] = field(default_factory=dict)
    key: str | None = None  # aux tables: the lookup key column
    key_prefix: str | None = None  # aux tables: a column the key is qualified by (PA: the county)
    # voters: one row per voter, the latest by this dated column not after the snapshot (NC VR_Snapshot)
    latest_per_voter: dict = field(default_factory=dict)

    def matches_name(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.patterns)


@dataclass(frozen=True)
class Layout:
    name: str
    state: str
    description: str
    priority: int
    voters: FileSpec
    history: FileSpec | None
    aux: dict[str, FileSpec]
    codes: dict[str, CodeTable]
    source: Path
    synth: dict = field(default_factory=dict)  # the synthetic generator's quirks ([synth] table)
    drop: dict = field(default_factory=dict)  # the files a complete drop holds ([drop]; formats/drops.py)
    canonical: Canonical = field(default_factory=Canonical)

    def file_specs(self) -> list[FileSpec]:
        specs = [self.voters]
        if self.history is not None and self.history.shape == "long":
            specs.append(self.history)
        return specs + [self.aux[name] for name in sorted(self.aux)]

    @property
    def wide_history(self) -> FileSpec | None:
        return self.history if self.history is not None and self.history.shape == "wide" else None

    @property
    def slot_history(self) -> FileSpec | None:
        """History in numbered slots of the voter file (PA: 40 x method, party); its options in .wide."""
        return self.history if self.history is not None and self.history.shape == "slots" else None

    @property
    def packed_history(self) -> FileSpec | None:
        """History packed as tokens in one voter-file column (NY VoterHistory); its options in .wide."""
        return self.history if self.history is not None and self.history.shape == "packed" else None


def formats_dir() -> Path:
    return Path(os.environ.get(FORMATS_DIR_ENV) or DEFAULT_FORMATS_DIR)


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError(f"{path.name}: not valid TOML: {exc}") from None


def load_layouts(directory: Path | list[Path] | None = None) -> dict[str, Layout]:
    """Every layout in `directory` (default config/formats/), by name. Given several directories,
    a later one adds layouts and overrides an earlier one's file of the same name."""
    directories = directory if isinstance(directory, (list, tuple)) else [directory or formats_dir()]
    documents = {path.stem: (path, _read_toml(path)) for folder in directories
                 for path in sorted(Path(folder).glob("*.toml"))}
    layouts = {}
    for stem, (path, doc) in documents.items():
        resolved, seen = doc, {stem}
        while "extends" in resolved:
            parent = resolved["extends"]
            if parent in seen or parent not in documents:
                raise LayoutError(f"{path.name}: extends unknown or circular layout {parent!r}")
            seen.add(parent)
            resolved = _deep_merge({k: v for k, v in documents[parent][1].items() if k != "name"},
                                   {k: v for k, v in resolved.items() if k != "extends"})
        layout = _build_layout(path, resolved)
        if layout.name != stem:
            raise LayoutError(f"{path.name}: name = {layout.name!r} must match the file name")
        layouts[layout.name] = layout
    return layouts


def layouts_for_state(state: str, directory: Path | list[Path] | None = None) -> list[Layout]:
    """The state's layouts, most preferred first (priority, then name)."""
    found = [layout for layout in load_layouts(directory).values() if layout.state == state.lower()]
    return sorted(found, key=lambda layout: (layout.priority, layout.name))


def _build_layout(path: Path, doc: dict) -> Layout:
    where = path.name
    for key in ("name", "state", "voters"):
        if key not in doc:
            raise LayoutError(f"{where}: missing required key {key!r}")
    codes = {name: _code_table(where, name, table) for name, table in doc.get("codes", {}).items()}
    voters = _file_spec(where, "voters", doc["voters"])
    history = _file_spec(where, "history", doc["history"]) if "history" in doc else None
    aux = {name: _file_spec(where, f"aux.{name}", spec) for name, spec in doc.get("aux", {}).items()}
    layout = Layout(
        name=doc["name"], state=doc["state"].lower(), description=doc.get("description", ""),
        priority=int(doc.get("priority", 100)), voters=voters, history=history, aux=aux,
        codes=codes, source=path, synth=_synth_table(where, doc.get("synth", {})), drop=doc.get("drop", {}),
        canonical=_canonical(where, doc.get("canonical", {})),
    )
    _validate(where, layout)
    return layout


SYNTH_KEYS = {"people", "damage", "address", "artefacts"}
SYNTH_FILE_KEYS = {"file", "file_groups", "quoting", "encoding", "newline", "delimiter", "delimiter_by_seed",
                   "add_columns", "vintages", "columns", "column_name", "voting_methods", "did_not_vote",
                   "token", "codes", "party_map"}
SYNTH_VALUE_KEYS = {"source", "value", "date", "map", "default", "template", "offset", "pad", "confidential",
                    "blank_every", "placeholder"}


def _synth_table(where: str, table: dict) -> dict:
    """The optional [synth] table: how the synthetic generator writes this layout (not read by the importer)."""
    if not isinstance(table, dict):
        raise LayoutError(f"{where}: [synth] must be a table")
    files = {"voters": table.get("voters", {}), "history": table.get("history", {}), **{
        f"aux.{name}": spec for name, spec in table.get("aux", {}).items()}}
    unknown = set(table) - SYNTH_KEYS - {"voters", "history", "aux"}
    if unknown:
        raise LayoutError(f"{where}: [synth] has unknown keys {sorted(unknown)}")
    for role, spec in files.items():
        unknown = set(spec) - SYNTH_FILE_KEYS
        if unknown:
            raise LayoutError(f"{where}: [synth.{role}] has unknown keys {sorted(unknown)}")
        for column, value in spec.get("columns", {}).items():
            if isinstance(value, str):
                continue
            if not isinstance(value, dict) or set(value) - SYNTH_VALUE_KEYS:
                raise LayoutError(f"{where}: [synth.{role}.columns] {column} must be a source name or a table "
                                  f"with keys from {sorted(SYNTH_VALUE_KEYS)}")
            if "source" in value and "value" in value:
                raise LayoutError(f"{where}: [synth.{role}.columns] {column} has both source and value")
    return table


def _canonical(where: str, table: dict) -> Canonical:
    unknown = set(table) - {"zip_leading_zero", *CODE_FIELDS}
    if unknown:
        raise LayoutError(f"{where}: [canonical] has unknown keys {sorted(unknown)}")
    try:
        forms = {name: CodeForm.parse(table[name]) for name in CODE_FIELDS if name in table}
    except ValueError as exc:
        raise LayoutError(f"{where}: [canonical] {exc}") from None
    return Canonical(zip_leading_zero=bool(table.get("zip_leading_zero", False)), code_forms=forms)


def state_canonical(state: str, directory: Path | list[Path] | None = None) -> Canonical:
    """The one Canonical of a state's layouts (they must agree); the default for a state without layouts."""
    found = {layout.name: layout.canonical for layout in layouts_for_state(state, directory)}
    distinct = set(map(repr, found.values()))
    if len(distinct) > 1:
        raise LayoutError(f"layouts of state {state!r} declare different [canonical] tables: {sorted(found)}")
    return next(iter(found.values()), Canonical())


def _code_table(where: str, name: str, table: dict) -> CodeTable:
    unknown = set(table) - {"exact", "contains", "default", "empty"}
    if unknown:
        raise LayoutError(f"{where}: codes.{name} has unknown keys {sorted(unknown)}")
    contains = []
    for rule in table.get("contains", []):
        if not (isinstance(rule, list) and len(rule) == 2):
            raise LayoutError(f"{where}: codes.{name}.contains entries are [text, value] pairs")
        contains.append((str(rule[0]).upper(), rule[1]))
    return CodeTable(
        name=name, exact={str(k).upper(): v for k, v in table.get("exact", {}).items()},
        contains=tuple(contains), default=table.get("default"), empty=table.get("empty"),
    )


def _file_spec(where: str, role: str, doc: dict) -> FileSpec:
    shape = doc.get("shape", "long")
    if shape not in ("long", "wide", "packed", "slots"):
        raise LayoutError(f"{where}: [{role}] shape must be 'long', 'wide', 'packed' or 'slots', got {shape!r}")
    if shape == "packed":
        return FileSpec(role=role, patterns=(), shape="packed", wide=_option(where, packed_options, doc))
    if shape == "slots":
        return FileSpec(role=role, patterns=(), shape="slots", wide=_option(where, slot_options, doc))
    if shape == "wide":
        pattern = doc.get("column_pattern")
        if not pattern:
            raise LayoutError(f"{where}: wide history needs column_pattern")
        compiled = re.compile(pattern)
        if not {"type", "date"} <= set(compiled.groupindex):
            raise LayoutError(f"{where}: column_pattern needs named groups 'type' and 'date'")
        wide = {
            "pattern": compiled, "date": list(_as_list(doc.get("date", ["%m/%d/%Y"]))),
            "election_type_codes": doc.get("election_type_codes"),
            "no_party_values": tuple(v.upper() for v in doc.get("no_party_values", [])),
            "party_codes": doc.get("party_codes"),
            # cell values that say "did not vote" (VT's F): no history row, like a blank cell
            "not_voted_values": tuple(str(v).upper() for v in doc.get("not_voted_values", [])),
        }
        return FileSpec(role=role, patterns=(), shape="wide", wide=wide)
    fixed = bool(doc.get("fixed_width", False))
    widths = tuple((str(w[0]), int(w[1]), int(w[2])) for w in doc.get("widths", []))
    columns = tuple(name for name, _, _ in widths) if fixed else tuple(doc.get("columns", []))
    if not doc.get("patterns"):
        raise LayoutError(f"{where}: [{role}] needs file name patterns")
    if not columns:
        raise LayoutError(f"{where}: [{role}] needs columns (or widths for fixed width)")
    aliases = {}
    for column, others in doc.get("aliases", {}).items():
        for other in _as_list(others):
            aliases[other.lower()] = column
    header = doc.get("header", True)
    if header not in (True, False, "detect"):
        raise LayoutError(f"{where}: [{role}] header must be true, false or \"detect\"")
    length = doc.get("line_length", [0, 0])
    fields = {name: _field_spec(where, role, name, spec) for name, spec in doc.get("fields", {}).items()}
    return FileSpec(
        role=role.split(".")[0], patterns=tuple(doc["patterns"]),
        encoding=doc.get("encoding", "latin-1"),
        delimiter=None if fixed else doc.get("delimiter", "\t"),
        sniff_from=tuple(doc.get("sniff_from", ["\t", "|", ","])), quote=doc.get("quote", ""),
        header=False if fixed else header, columns=columns,
        optional_columns=tuple(doc.get("optional_columns", [])),
        never_load=frozenset(doc.get("never_load", [])), never_load_reasons=_reasons(where, role, doc),
        extra=tuple(doc.get("extra", [])), aliases=aliases,
        placeholders=tuple(doc.get("placeholders", [])), fixed_width=fixed, widths=widths,
        line_length=(int(length[0]), int(length[1])), fields=fields,
        skip_values={k: tuple(str(v).upper() for v in _as_list(vs)) for k, vs in doc.get("skip_values", {}).items()},
        key=doc.get("key"), key_prefix=doc.get("key_prefix"),
        latest_per_voter=_option(where, latest_per_voter, role, doc),
    )


def _option(where: str, parse, *args):
    """An option table read by formats/history_options.py; its complaint names the layout file."""
    try:
        return parse(*args)
    except OptionError as exc:
        raise LayoutError(f"{where}: {exc}") from None


def _reasons(where: str, role: str, doc: dict) -> dict[str, str]:
    """never_load as a table (column = reason) or, in older files, a list (no reasons)."""
    value = doc.get("never_load", {})
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {}
    raise LayoutError(f"{where}: [{role}] never_load must be a table of column = reason")


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _field_spec(where: str, role: str, name: str, spec) -> dict:
    if isinstance(spec, str):
        return {"column": spec}
    if not isinstance(spec, dict):
        raise LayoutError(f"{where}: [{role}.fields] {name} must be a column name or a table")
    kinds = [kind for kind in FIELD_KINDS if kind in spec and not (kind == "column" and "lookup" in spec)]
    if len(kinds) != 1:
        raise LayoutError(f"{where}: [{role}.fields] {name} needs exactly one of {FIELD_KINDS}")
    unknown = set(spec) - set(FIELD_KINDS) - TRANSFORMS - {"sep", "key"}
    if unknown:
        raise LayoutError(f"{where}: [{role}.fields] {name} has unknown keys {sorted(unknown)}")
    spec = dict(spec)
    if "date" in spec:
        spec["date"] = _as_list(spec["date"])
    return spec


def _validate(where: str, layout: Layout) -> None:
    targets = {"voters": schema.VOTERS, "history": schema.HISTORY}
    specs = [("voters", layout.voters)] + ([("history", layout.history)] if layout.history else [])
    for role, spec in specs:
        if spec.shape in ("wide", "packed", "slots"):
            for key in ("election_type_codes", "party_codes", "voting_method_codes"):
                table = spec.wide.get(key)
                if table and table not in layout.codes:
                    raise LayoutError(f"{where}: {spec.shape} history uses unknown code table {table!r}")
            if spec.shape == "packed" and spec.wide["column"] not in layout.voters.columns:
                raise LayoutError(f"{where}: packed history column {spec.wide['column']!r} is no voter column")
            if spec.shape == "slots":
                _option(where, check_slots, layout, spec)
            continue
        known = set(spec.columns) | set(spec.optional_columns)
        for name, field_spec in spec.fields.items():
            if name not in targets[role].names or name in AUTOMATIC:
                raise LayoutError(f"{where}: [{role}.fields] {name} is not a canonical {role} column")
            columns = []
            if "join" in field_spec or "concat" in field_spec:
                columns = list(field_spec.get("join", field_spec.get("concat")))
            elif "column" in field_spec and "lookup" not in field_spec:
                columns = [field_spec["column"]]
            elif "lookup" in field_spec:
                aux = layout.aux.get(field_spec["lookup"])
                if aux is None:
                    raise LayoutError(f"{where}: {name} looks up unknown aux table {field_spec['lookup']!r}")
                columns = [field_spec["key"]]
                if field_spec.get("column") not in aux.columns and "column" in field_spec:
                    raise LayoutError(f"{where}: {name}: aux table has no column {field_spec['column']!r}")
            missing = [c for c in columns if c not in known]
            if missing:
                raise LayoutError(f"{where}: [{role}.fields] {name} reads unknown columns {missing}")
            table = field_spec.get("codes")
            if table and table not in layout.codes:
                raise LayoutError(f"{where}: [{role}.fields] {name} uses unknown code table {table!r}")
        if spec.never_load & set(spec.fields.get(n, {}).get("column", "") for n in spec.fields):
            raise LayoutError(f"{where}: a never_load column is mapped")
        unknown_extra = [c for c in spec.extra if c not in known]
        if unknown_extra or set(spec.extra) & spec.never_load or (spec.extra and role != "voters"):
            raise LayoutError(f"{where}: [{role}] extra must name voter columns that are not never_load "
                              f"(unknown: {unknown_extra})")
        for column in spec.skip_values:
            if column not in known:
                raise LayoutError(f"{where}: skip_values names unknown column {column!r}")
        if spec.latest_per_voter and (spec.latest_per_voter["column"] not in known
                                      or "column" not in spec.fields["voter_id"]):
            raise LayoutError(f"{where}: latest_per_voter needs a known column and a one-column voter_id")
    if "voter_id" not in layout.voters.fields:
        raise LayoutError(f"{where}: [voters.fields] must map voter_id")
    if layout.history is not None and layout.history.shape == "long" and "voter_id" not in layout.history.fields:
        raise LayoutError(f"{where}: [history.fields] must map voter_id")
    for name, aux in layout.aux.items():
        if aux.key not in aux.columns or (aux.key_prefix and aux.key_prefix not in aux.columns):
            raise LayoutError(f"{where}: [aux.{name}] key and key_prefix must be its columns")


# ---- detection -------------------------------------------------------------------------------

@dataclass
class Detected:
    """A raw file matched to a layout: how to read it and where its columns are."""

    path: Path
    layout: Layout
    spec: FileSpec
    role: str  # voters / history / aux name
    encoding: str
    bom: bool
    delimiter: str | None
    has_header: bool
    field_count: int
    column_index: dict[str, int]  # layout column -> position (delimited files)
    wide_columns: list[tuple[int, str, str]] = field(default_factory=list)  # (position, type, date)
    header_names: list[str] = field(default_factory=list)


def _normalise_name(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def _match(path: Path, layout: Layout, spec: FileSpec, role: str) -> Detected | str:
    """A Detected when `path` is in this layout, else a short reason why not."""
    line, encoding, bom = first_line(path, spec.encoding)
    if spec.fixed_width:
        low, high = spec.line_length
        if low <= len(line) <= high:
            return Detected(path, layout, spec, role, encoding, bom, None, False, len(spec.widths), {})
        return f"{layout.name}: first line has {len(line)} characters, expected {low}-{high}"
    try:
        delimiter = sniff_delimiter(line, list(spec.sniff_from)) if spec.delimiter == "sniff" else spec.delimiter
    except ValueError as exc:
        return f"{layout.name}: {exc}"
    fields = split_header(line, delimiter, spec.quote)
    wide = layout.wide_history if role == "voters" else None

    if spec.header in (True, "detect"):
        names = [_normalise_name(f) for f in fields]
        lookup = {column.lower(): column for column in spec.columns + spec.optional_columns}
        resolved = [lookup.get(spec.aliases.get(n, n).lower(), lookup.get(n)) for n in names]
        index: dict[str, int] = {}
        wide_columns, extra = [], []
        for position, (raw, column) in enumerate(zip(fields, resolved)):
            if column is not None:
                index.setdefault(column, position)
                continue
            found = wide.wide["pattern"].match(raw.strip().strip('"')) if wide else None
            if found:
                wide_columns.append((position, found.group("type"), found.group("date")))
            else:
                extra.append(raw.strip())
        missing = [c for c in spec.columns if c not in index]
        if not missing and not extra:
            return Detected(path, layout, spec, role, encoding, bom, delimiter, True, len(fields),
                            index, wide_columns, [f.strip().strip('"') for f in fields])
        if spec.header is True:
            parts = []
            if missing:
                parts.append(f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}")
            if extra:
                parts.append(f"unexpected {extra[:8]}{'...' if len(extra) > 8 else ''}")
            return f"{layout.name}: header " + ", ".join(parts)
        if any(n in lookup for n in names):
            return f"{layout.name}: header does not match (missing {missing[:8]}, unexpected {extra[:8]})"
    if len(fields) == len(spec.columns):
        return Detected(path, layout, spec, role, encoding, bom, delimiter, False, len(fields),
                        {c: i for i, c in enumerate(spec.columns)})
    return f"{layout.name}: first line has {len(fields)} fields, expected {len(spec.columns)}"


_DATA_LIKE = re.compile(r"\d{3,}")


def first_line_is_data(path: Path, spec: FileSpec, wide_pattern: re.Pattern | None = None) -> bool:
    """Whether the first line looks like a data row rather than a header.

    A voter row always carries a run of digits (id, ZIP, date); header names do not, apart from
    wide election columns such as GENERAL-11/03/2020.
    """
    line, _, _ = first_line(path, spec.encoding)
    delimiter = spec.delimiter if spec.delimiter not in (None, "sniff") else None
    if delimiter is None:
        try:
            delimiter = sniff_delimiter(line, list(spec.sniff_from))
        except ValueError:
            delimiter = "\t"
    fields = [f.strip().strip('"') for f in line.split(delimiter)]
    return any(_DATA_LIKE.search(f) and not (wide_pattern and wide_pattern.match(f)) for f in fields)


def describe_first_line(path: Path, spec: FileSpec, wide_pattern: re.Pattern | None = None) -> str:
    """What an error message may show of a file's first line: a header, never a data row."""
    line, encoding, _ = first_line(path, spec.encoding)
    if spec.header is False:
        return f"a headerless first line of {len(line)} characters"
    if first_line_is_data(path, spec, wide_pattern):
        return "a first line that looks like data, not a header (not shown: it may hold personal data)"
    shown = line if len(line) <= 400 else line[:400] + "..."
    return f"header {shown!r} ({encoding})"


def candidates_for(name: str, layouts: list[Layout]) -> list[tuple[Layout, FileSpec, str]]:
    """(layout, spec, role) whose file name patterns match `name`, in preference order."""
    found = []
    for layout in layouts:
        if layout.voters.matches_name(name):
            found.append((layout, layout.voters, "voters"))
        if layout.history is not None and layout.history.shape == "long" and layout.history.matches_name(name):
            found.append((layout, layout.history, "history"))
        for aux_name in sorted(layout.aux):
            if layout.aux[aux_name].matches_name(name):
                found.append((layout, layout.aux[aux_name], aux_name))
    return found


def detect_file(path: Path, layouts: list[Layout], prefer: str | None = None) -> Detected | None:
    """The layout of one raw file; None if its name is no state file. Raises LayoutError if unmatched."""
    path = Path(path)
    candidates = candidates_for(path.name, layouts)
    if not candidates:
        return None
    if prefer:
        candidates.sort(key=lambda c: c[0].name != prefer)
    if file_size(path) == 0:  # a zip member's size too
        raise LayoutError(f"{path.name}: file is empty")
    try:
        first_line(path, candidates[0][1].encoding)
    except ValueError as exc:
        raise LayoutError(str(exc)) from None
    reasons = []
    for layout, spec, role in candidates:
        result = _match(path, layout, spec, role)
        if isinstance(result, Detected):
            return result
        reasons.append(result)
    first_layout, first_spec, first_role = candidates[0]
    wide = first_layout.wide_history if first_role == "voters" else None
    wide_pattern = wide.wide["pattern"] if wide else None
    seen = describe_first_line(path, first_spec, wide_pattern)
    if first_spec.header is not False and first_line_is_data(path, first_spec, wide_pattern):
        reasons = [reason.split(":", 1)[0] + ": header does not match" for reason in reasons]
    elif (closest := closest_layout(path, candidates)) is not None:  # drift is loud: the column diff
        seen += f"; {closest.describe()}"
    raise LayoutError(f"{path.name} matches no known layout; saw {seen}; tried: " + "; ".join(reasons))
