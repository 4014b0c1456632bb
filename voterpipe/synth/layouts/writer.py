"""The generic synthetic writer: a layout TOML in, the TextFiles of a drop in that layout out.

Columns, delimiter, quoting, encoding, header, fixed-width positions and history shape come from
the layout; each column's value is the inverse of its [<role>.fields] mapping unless the layout's
[synth.<role>.columns] says otherwise (see config/formats/README.md).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.formats.layouts import FileSpec, Layout
from voterpipe.synth.layouts.artefacts import plant
from voterpipe.synth.layouts.common import DropContext, history_rows
from voterpipe.synth.layouts.history_forms import packed_history, slot_history
from voterpipe.synth.layouts.values import Frame, bad_date, evaluate
from voterpipe.synth.render import DAMAGE_KINDS, Column, TextFile, choose

WILDCARDS = set("*?[")


def write_layout(ctx: DropContext, layout: Layout) -> list[TextFile]:
    """Every file of one drop of `layout`: voters (with wide history), long history, auxiliary tables."""
    files = _voter_files(ctx, layout)
    if layout.history is not None and layout.history.shape == "long":
        files += _history_files(ctx, layout)
    slots = layout.slot_history
    for name in sorted(layout.aux):
        if slots is not None and name == slots.wide["lookup"]:
            files += _slot_aux_files(ctx, layout, name)
        else:
            files.append(_aux_file(ctx, layout, name))
    return files


def damage_kinds(layout: Layout) -> list[str]:
    """The damage kinds a drop of this layout can carry: [synth] damage, limited to mapped columns."""
    fields = layout.voters.fields
    possible = {"extra_fields", "missing_fields"}
    for kind, field_name in (("nul_bytes", "last_name"), ("bad_date", "registered_on"), ("bad_zip", "res_zip5")):
        if "column" in fields.get(field_name, {}):
            possible.add(kind)
    wanted = layout.synth.get("damage", list(DAMAGE_KINDS))
    unknown = set(wanted) - set(DAMAGE_KINDS)
    if unknown:
        raise ValueError(f"{layout.source.name}: [synth] damage has unknown kinds {sorted(unknown)}")
    return [kind for kind in DAMAGE_KINDS if kind in wanted and kind in possible]


def _synth_file(layout: Layout, role: str) -> dict:
    if role.startswith("aux."):
        return layout.synth.get("aux", {}).get(role[4:], {})
    return layout.synth.get(role, {})


def written_columns(spec: FileSpec, synth_file: dict, snapshot: date) -> list[str]:
    """The columns a file of this snapshot holds, in order: the layout's, plus additions, per vintage."""
    if spec.fixed_width:
        return [name for name, _, _ in spec.widths]
    columns = list(spec.columns) + list(synth_file.get("add_columns", []))
    for vintage in synth_file.get("vintages", []):
        if snapshot < date.fromisoformat(str(vintage["before"])):
            drop, rename = set(vintage.get("drop", [])), vintage.get("rename", {})
            columns = [rename.get(c, c) for c in columns if c not in drop]
    return columns


def implied_specs(layout: Layout, spec: FileSpec) -> dict[str, dict]:
    """Layout column -> value spec, by inverting the field mapping (the first field naming a column wins)."""
    fields = spec.fields
    zip_kinds: dict[str, set] = {}
    for f in fields.values():
        if "zip" in f and "column" in f:
            zip_kinds.setdefault(f["column"], set()).add(f["zip"])
    simple = {f["column"] for f in fields.values() if "column" in f and "lookup" not in f}
    out: dict[str, dict] = {}
    for name, f in fields.items():
        base = {"source": name}
        if "date" in f:
            base["date"] = f["date"][0]
        if name == "registered_on" and f.get("placeholders"):
            base["placeholder"] = f["placeholders"][0]
        if "lookup" in f:
            out.setdefault(f["key"], {"source": "election_code"})
        elif "column" in f:
            if zip_kinds.get(f["column"]) == {"zip5", "zip4"}:
                base["source"] = "res_zip"
            if name == "res_address_line" and "res_unit" not in fields:
                base["source"] = "res_address_line_with_unit"
            out.setdefault(f["column"], base)
        elif "join" in f:
            out.setdefault(f["join"][0], base)
        elif "concat" in f:
            free = [part for part in f["concat"] if part not in simple]
            out.setdefault(free[-1] if free else f["concat"][-1], base)
    return out


def column_specs(layout: Layout, spec: FileSpec, role: str, written: list[str],
                 implied: dict[str, dict] | None = None) -> list[dict]:
    """A value spec per written column: [synth.<role>.columns], else the implied one, else blank."""
    implied = implied_specs(layout, spec) if implied is None else implied
    overrides = _synth_file(layout, role).get("columns", {})
    known = {c.lower(): c for c in spec.columns + spec.optional_columns}
    specs = []
    for name in written:
        column = known.get(spec.aliases.get(name.lower(), name).lower(), name)
        override = overrides.get(name, overrides.get(column))
        base = implied.get(name, implied.get(column, {"value": ""}))
        if isinstance(override, str):
            override = {"source": override}
        if override is None:
            specs.append(base)
        elif "source" in override or "value" in override:
            specs.append(override)
        else:
            specs.append({**base, **override})
    return specs


def _columns(frame: Frame, layout: Layout, spec: FileSpec, role: str, written: list[str]) -> list[Column]:
    where = f"{layout.source.name} [{role}]"
    return [evaluate(frame, s, f"{where} {name}") for name, s in zip(written, column_specs(layout, spec, role, written))]


def _delimiter(spec: FileSpec, synth_file: dict, seed: int) -> str:
    by_seed = synth_file.get("delimiter_by_seed")
    if by_seed:
        return by_seed[seed % len(by_seed)]
    if "delimiter" in synth_file:
        return synth_file["delimiter"]
    return spec.sniff_from[0] if spec.delimiter == "sniff" else spec.delimiter


def _file_name(spec: FileSpec, synth_file: dict, where: str) -> str:
    if "file" in synth_file or "file_groups" in synth_file:
        return synth_file.get("file", "")
    plain = [p for p in spec.patterns if not WILDCARDS & set(p) and not p.endswith(".gz")]
    if not plain:
        raise ValueError(f"{where}: no plain file name among the patterns; set [synth.<role>] file")
    return plain[0]


def fixed_widths(spec: FileSpec) -> list[int]:
    """Each field's width; a gap before the next field's start is padded as part of the field."""
    starts = [start for _, start, _ in spec.widths]
    if starts[0] != 0 or any(end > nxt for (_, _, end), nxt in zip(spec.widths, starts[1:])):
        raise ValueError(f"[{spec.role}] fixed-width fields must start at 0 and not overlap")
    return [nxt - start for start, nxt in zip(starts, starts[1:])] + [spec.widths[-1][2] - starts[-1]]


def _format(spec: FileSpec, synth_file: dict, seed: int, written: list[str]) -> dict:
    """TextFile keyword arguments for the file's physical format."""
    if spec.fixed_width:
        return {"widths": fixed_widths(spec), "header": None,
                "encoding": synth_file.get("encoding", spec.encoding), "newline": synth_file.get("newline", "\n")}
    return {"sep": _delimiter(spec, synth_file, seed), "header": written if spec.header is not False else None,
            "quoting": synth_file.get("quoting", "minimal" if spec.quote else "none"),
            "encoding": synth_file.get("encoding", spec.encoding), "newline": synth_file.get("newline", "\n")}


def _groups(ctx: DropContext, synth_file: dict, name: str, county_index: np.ndarray) -> list[tuple[str, np.ndarray, dict]]:
    """(file name, row positions, meta) per output file: one file, one per county, or county-number groups."""
    stamp = ctx.snapshot.strftime("%Y%m%d")
    counties = ctx.profile.counties
    if "file_groups" in synth_file:
        number = np.array([int(c.county_code) for c in counties], dtype=np.int64)[county_index]
        groups = [(g, np.flatnonzero((number >= low) & (number <= high)), {})
                  for g, low, high in synth_file["file_groups"]]
        return [(g.format(stamp=stamp), rows, meta) for g, rows, meta in groups if len(rows)]
    if "{county}" in name:
        return [(name.format(stamp=stamp, county=c.county_code), np.flatnonzero(county_index == i),
                 {"county": c.county_code}) for i, c in enumerate(counties)]
    return [(name.format(stamp=stamp), np.arange(len(county_index)), {})]


def _take(columns: list[Column], rows: np.ndarray, everything: bool) -> list[Column]:
    if everything:
        return columns
    take = pa.array(rows)
    return [c if isinstance(c, str) else c.take(take) for c in columns]


def _field_index(spec: FileSpec, written: list[str], field_name: str) -> int | None:
    column = spec.fields.get(field_name, {}).get("column")
    return written.index(column) if column in written else None


def _voter_files(ctx: DropContext, layout: Layout) -> list[TextFile]:
    spec, synth_file = layout.voters, _synth_file(layout, "voters")
    written = written_columns(spec, synth_file, ctx.snapshot)
    frame = Frame(ctx, ctx.rows, layout.state.upper(), layout.synth)
    columns = _columns(frame, layout, spec, "voters", written)
    packed, tokens = layout.packed_history, None
    if packed is not None:  # history as tokens in one voter column
        columns[written.index(packed.wide["column"])], tokens = packed_history(ctx, layout)
    if layout.slot_history is not None:  # history in numbered slots of the voter row
        cells, tokens = slot_history(ctx, layout)
        for column, values in cells.items():
            columns[written.index(column)] = values
    columns, planted = plant(layout, spec, written, columns, ctx.seed, ctx.damage == 0, ctx.dirty_rate)
    header = list(written)
    wide = layout.wide_history
    cells: list[pa.Array] = []
    if wide is not None:
        names, cells = wide_history(ctx, layout)
        header, columns = header + names, columns + cells
    fmt = _format(spec, synth_file, ctx.seed, header)
    date_column = _field_index(spec, written, "registered_on")
    date_format = spec.fields.get("registered_on", {}).get("date", ["%m/%d/%Y"])[0]
    meta = {"kind": "voters_with_history" if tokens is not None or wide is not None else "voters"}
    if spec.delimiter == "sniff" and not spec.fixed_width:
        meta["delimiter"] = fmt["sep"]
    files = []
    for name, rows, extra in _groups(ctx, synth_file, _file_name(spec, synth_file, layout.name), ctx.county_index()):
        everything = len(rows) == len(ctx.rows)
        file_meta = {**meta, **extra}
        if planted:  # artefacts the import must repair, per canonical field and kind
            file_meta["artefacts"] = {name: {kind: int(hit[rows].sum()) for kind, hit in kinds.items()}
                                      for name, kinds in planted.items()}
        if wide is not None:
            take = pa.array(rows)
            no_vote = pa.array(["", *wide.wide.get("not_voted_values", ())], pa.string())  # cells that are no vote
            file_meta["history_cells"] = sum(
                int(pc.sum(pc.invert(pc.is_in(c if everything else c.take(take), no_vote))).as_py() or 0)
                for c in cells)
        if tokens is not None:
            file_meta["history_cells"] = int(tokens[rows].sum())
        files.append(TextFile(
            name=name, columns=_take(columns, rows, everything), damage=ctx.damage[rows],
            date_column=date_column, zip_column=_field_index(spec, written, "res_zip5"),
            text_column=_field_index(spec, written, "last_name"), bad_date=bad_date(date_format),
            row_ids=ctx.column("voter_id")[rows], meta=file_meta, **fmt))
    return files


def wide_history(ctx: DropContext, layout: Layout) -> tuple[list[str], list[pa.Array]]:
    """One column per election, oldest first: blank, the no-party mark, or the primary ballot's party."""
    wide = layout.wide_history
    name_format = layout.synth.get("history", {}).get("column_name", "{label}-{on:%m/%d/%Y}")
    no_party = wide.wide["no_party_values"][0] if wide.wide["no_party_values"] else "X"
    position = np.full(len(ctx.people), -1, dtype=np.int64)
    position[ctx.rows] = np.arange(len(ctx.rows))
    person = ctx.history["person"].to_numpy()
    election = ctx.history["election"].to_numpy()
    written = position[person] >= 0
    party = ctx.text("party_first_raw")
    ballot = choose(pc.equal(party, "").to_numpy(zero_copy_only=False), no_party, party)
    names, cells = [], []
    for k, e in enumerate(ctx.elections):
        voted = np.zeros(len(ctx.rows), dtype=bool)
        voted[position[person[written & (election == k)]]] = True
        not_voted = wide.wide.get("not_voted_values") or ("",)
        cells.append(choose(voted, ballot if e.kind.endswith("primary") else no_party, not_voted[0]))
        names.append(name_format.format(label=e.label, on=e.on, kind=e.kind))
    return names, cells


def _slot_aux_files(ctx: DropContext, layout: Layout, name: str) -> list[TextFile]:
    """The election map of a slots history: per county file (or one file), a row per election."""
    spec, options = layout.aux[name], layout.slot_history.wide
    synth_file = _synth_file(layout, f"aux.{name}")
    written = written_columns(spec, synth_file, ctx.snapshot)
    date_format, titles = options["date"][0], layout.synth.get("history", {}).get("codes", {})  # title by kind
    stamp, files = ctx.snapshot.strftime("%Y%m%d"), []
    file_name = _file_name(spec, synth_file, layout.name)
    counties = ctx.profile.counties if "{county}" in file_name else ctx.profile.counties[:1]
    for county in counties:
        rows = [{spec.key: str(k + 1), spec.key_prefix: county.county_name,
                 options["date_column"]: e.on.strftime(date_format),
                 options.get("type_column"): titles.get(e.kind, e.label)} for k, e in enumerate(ctx.elections)]
        columns = [pa.array([r.get(c, "") or "" for r in rows], pa.string()) for c in written]
        files.append(TextFile(name=file_name.format(stamp=stamp, county=county.county_code), columns=columns,
                              meta={"kind": name, "county": county.county_code},
                              **_format(spec, synth_file, ctx.seed, written)))
    return files


def _history_frame(ctx: DropContext, layout: Layout) -> tuple[Frame, np.ndarray]:
    """The long history rows (sorted like the voter file) and which of them are did-not-vote rows."""
    person, election, u = history_rows(ctx)
    skipped = np.zeros(len(person), dtype=bool)
    did_not_vote = layout.synth.get("history", {}).get("did_not_vote")
    if did_not_vote:
        extra = _did_not_vote(ctx, did_not_vote["county"])
        person = np.concatenate([person, extra])
        election = np.concatenate([election, np.full(len(extra), _latest_general(ctx), dtype=np.int64)])
        u = np.concatenate([u, np.zeros(len(extra))])
        skipped = np.concatenate([skipped, np.ones(len(extra), dtype=bool)])
    frame = Frame(ctx, person, layout.state.upper(), layout.synth, election=election, u=u, role="history")
    return frame, skipped


def _latest_general(ctx: DropContext) -> int:
    generals = [k for k, e in enumerate(ctx.elections) if e.kind == "general"]
    return generals[-1] if generals else -1


def _did_not_vote(ctx: DropContext, county_code: str) -> np.ndarray:
    """Written voters of one county registered before the latest general who did not vote in it."""
    k = _latest_general(ctx)
    index = next((i for i, c in enumerate(ctx.profile.counties) if c.county_code == county_code), None)
    if index is None:
        raise ValueError(f"[synth.history] did_not_vote: no county {county_code!r} among "
                         f"{[c.county_code for c in ctx.profile.counties]}")
    if k < 0:
        return np.zeros(0, dtype=np.int64)
    people = ctx.people
    rows = ctx.rows[people["county_index"].to_numpy()[ctx.rows] == index]
    voted = np.zeros(len(people), dtype=bool)
    voted[ctx.history["person"].to_numpy()[ctx.history["election"].to_numpy() == k]] = True
    registered = people["registered_on"].to_numpy().astype("datetime64[D]")
    return rows[~voted[rows] & (registered[rows] < np.datetime64(ctx.elections[k].on, "D"))]


def _history_files(ctx: DropContext, layout: Layout) -> list[TextFile]:
    spec, synth_file = layout.history, _synth_file(layout, "history")
    written = written_columns(spec, synth_file, ctx.snapshot)
    frame, skipped = _history_frame(ctx, layout)
    columns = _columns(frame, layout, spec, "history", written)
    for column, value in did_not_vote_marks(layout).items():  # did-not-vote rows carry the state's code
        if skipped.any() and column in written:
            at = written.index(column)
            columns[at] = choose(skipped, value, columns[at])
    fmt = _format(spec, synth_file, ctx.seed, written)
    meta = {"kind": "history"}
    if spec.delimiter == "sniff" and not spec.fixed_width:
        meta["delimiter"] = fmt["sep"]
    county = ctx.people["county_index"].to_numpy().astype(np.int64)[frame.rows]
    files = []
    for name, rows, extra in _groups(ctx, synth_file, _file_name(spec, synth_file, layout.name), county):
        files.append(TextFile(name=name, columns=_take(columns, rows, len(rows) == len(frame.rows)),
                              meta={**meta, **extra}, **fmt))
    return files


def did_not_vote_marks(layout: Layout) -> dict[str, str]:
    """History column -> the value that says "did not vote": the ballot_status code table's, or a skip value."""
    spec = layout.history
    marks = {column: values[0] for column, values in spec.skip_values.items() if values}
    status = spec.fields.get("ballot_status", {})
    table = layout.codes.get(status.get("codes", ""))
    if table is not None and "column" in status:
        codes = [code for code, value in table.exact.items() if value == "did_not_vote"]
        if codes:
            marks[status["column"]] = codes[0]
    return marks


def _aux_file(ctx: DropContext, layout: Layout, name: str) -> TextFile:
    """An election-code table: one row per election, keyed by the code the history rows carry."""
    spec, role = layout.aux[name], f"aux.{name}"
    synth_file = _synth_file(layout, role)
    written = written_columns(spec, synth_file, ctx.snapshot)
    implied = {spec.key: {"source": "election_code"}}
    for field_name, f in layout.history.fields.items() if layout.history else ():
        if f.get("lookup") == name and "column" in f:
            implied.setdefault(f["column"], {"source": field_name, **({"date": f["date"][0]} if "date" in f else {})})
    specs = column_specs(layout, spec, role, written, implied)
    n = len(ctx.elections)
    frame = Frame(ctx, np.zeros(n, dtype=np.int64), layout.state.upper(), layout.synth,
                  election=np.arange(n, dtype=np.int64), u=np.zeros(n), role=role)
    columns = [evaluate(frame, s, f"{layout.source.name} [{role}] {c}") for c, s in zip(written, specs)]
    columns = [pa.array([c] * n, pa.string()) if isinstance(c, str) else c for c in columns]
    return TextFile(name=_file_name(spec, synth_file, layout.name), columns=columns,
                    meta={"kind": name}, **_format(spec, synth_file, ctx.seed, written))
