"""The per-block work of the import: a parsed block of a voter, history or auxiliary file becomes
canonical rows in the output writers, and its bad lines become rejects (never_load values blanked).
FileReport counts what happened to each file; its record() is the file's manifest entry."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe import schema
from voterpipe.formats import history_shapes
from voterpipe.formats.background import BackgroundWriter, prefetch
from voterpipe.formats.layouts import Detected, FileSpec, Layout, slot_columns
from voterpipe.formats.normalise import (
    AuxTable, NullCounts, build_extra, build_fields, clean_text, map_codes, parse_dates)
from voterpipe.formats.decoding import TextBlocks
from voterpipe.formats.readers import ParsedBlock, Reject, parse_delimited, parse_fixed_width
from voterpipe.manifests import FileRecord


class Writers:
    """The stage's three output files, each written in the background."""

    def __init__(self, outputs: dict[str, Path]):
        self.voters = BackgroundWriter(outputs["voters"], schema.VOTERS, per_chunk=True)
        self.history = BackgroundWriter(outputs["history"], schema.HISTORY, per_chunk=True)
        self.rejects = BackgroundWriter(outputs["rejects"], schema.REJECTS, per_chunk=True)

    def end_chunk(self) -> None:
        """What the chunk's pieces gave each writer goes out as one table (one row group)."""
        for writer in (self.voters, self.history, self.rejects):
            writer.flush()

    def close(self) -> None:
        errors = []
        for writer in (self.voters, self.history, self.rejects):
            try:
                writer.close()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@dataclass
class FileReport:
    """One input file's counts while it is read; record() gives its manifest entry."""

    file: str
    role: str
    layout: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    skipped_by_reason: Counter = field(default_factory=Counter)
    nulled: NullCounts = field(default_factory=NullCounts)
    repaired: NullCounts = field(default_factory=NullCounts)
    history_rows: int = 0  # from wide history columns of a voter file

    def record(self, detected: Detected, blocks: TextBlocks) -> FileRecord:
        wide = self.role == "voters" and (bool(detected.wide_columns) or detected.layout.packed_history is not None
                                          or detected.layout.slot_history is not None)
        return FileRecord(
            name=self.file, role=self.role, layout=self.layout,
            size=blocks.total_bytes, sha256=blocks.sha256, encoding=blocks.encoding, bom=blocks.bom,
            delimiter=detected.delimiter, fixed_width=detected.spec.fixed_width,
            header=detected.has_header, columns=detected.field_count,
            rows_read=self.rows_read, rows_loaded=self.rows_loaded, rows_rejected=self.rows_rejected,
            rows_skipped=self.rows_skipped, rejected_by_reason=dict(sorted(self.rejected_by_reason.items())),
            skipped_by_reason=dict(sorted(self.skipped_by_reason.items())),
            values_nulled=self.nulled.as_dict(), values_repaired=self.repaired.as_dict(),
            nul_bytes_stripped=blocks.counters.nul_stripped,
            undecodable_bytes_replaced=blocks.counters.undecodable_replaced,
            stray_cr_replaced=blocks.counters.stray_cr_replaced,
            boms_stripped=blocks.counters.boms_stripped,
            history_rows_from_wide_columns=self.history_rows if wide else None,
            wide_history_columns=len(detected.wide_columns) if wide else None,
        )


@dataclass
class LoadContext:
    """What the per-block work of one file needs: where it is, its layout, the writers."""

    state: str
    snapshot: date
    source_file: str
    layout: Layout
    detected: Detected
    aux: dict[str, AuxTable]
    writers: Writers
    report: FileReport
    keep_lines: np.ndarray | None = None  # latest_per_voter: the (sorted) lines to load, others are skipped


READ_AHEAD_PIECES = 3  # pieces decoded ahead of the parsing: a busy machine's stalls even out


def parse_blocks(blocks: TextBlocks, detected: Detected, columns: list[str] | None = None):
    """ParsedBlocks of a file (of `columns` only, if given); the header line (if any) is skipped but
    counted as line 1."""
    spec = detected.spec
    next_line = 1
    wanted = columns if columns is not None else _wanted_columns(detected)
    for block, ends_chunk in prefetch(blocks.pieces(), depth=READ_AHEAD_PIECES):
        if next_line == 1 and detected.has_header:
            cut = block.find(b"\n")
            block = block[cut + 1:]
            next_line = 2
            if not block:
                continue
        if spec.fixed_width:
            parsed = parse_fixed_width(block, next_line, widths=list(spec.widths),
                                       line_length=spec.line_length, include=set(wanted))
        else:
            include = {name: detected.column_index[name] for name in wanted if name in detected.column_index}
            for position, _, _ in detected.wide_columns:
                include[f"__wide_{position}"] = position
            parsed = parse_delimited(block, next_line, delimiter=detected.delimiter, quote=spec.quote,
                                     ncols=detected.field_count, include=include)
        next_line += parsed.lines
        parsed.ends_chunk = ends_chunk
        yield parsed


def _wanted_columns(detected: Detected) -> list[str]:
    """Layout columns the field specs read: never the never_load ones (e.g. NC ssn)."""
    spec = detected.spec
    wanted: list[str] = []
    for field_spec in spec.fields.values():
        if "lookup" in field_spec:
            wanted.append(field_spec["key"])
        elif "column" in field_spec:
            wanted.append(field_spec["column"])
        for column in field_spec.get("join", []) + field_spec.get("concat", []):
            wanted.append(column)
    wanted += list(spec.skip_values) + list(spec.extra)
    if spec.latest_per_voter:
        wanted.append(spec.latest_per_voter["column"])
    packed, slots = detected.layout.packed_history, detected.layout.slot_history
    if packed is not None and detected.role == "voters":
        wanted.append(packed.wide["column"])
    if slots is not None and detected.role == "voters":
        wanted += [c for _, method, party in slot_columns(slots) for c in (method, party) if c]
        wanted += [slots.wide["county_column"]] if slots.wide.get("county_column") else []
    if spec.key:
        wanted += list(spec.columns)
    return [c for c in dict.fromkeys(wanted) if c not in spec.never_load]


def _redact(raw_line: str, detected: Detected) -> str:
    """Blank never_load values (e.g. ssn) in a rejected raw line before it is stored."""
    spec = detected.spec
    if not spec.never_load or detected.delimiter is None:
        return raw_line
    parts = raw_line.split(detected.delimiter)
    positions = {detected.column_index[c] for c in spec.never_load if c in detected.column_index}
    if len(parts) != detected.field_count:
        # Fields are shifted: blank anything that could be the value, around its position too.
        positions = {p + shift for p in positions for shift in range(-3, 4)} | {
            i for i, part in enumerate(parts) if sum(ch.isdigit() for ch in part) >= 4}
    return detected.delimiter.join("" if i in positions else part for i, part in enumerate(parts))


def _write_rejects(context: LoadContext, rejects: list[Reject]) -> None:
    if not rejects:
        return
    rejects = sorted(rejects, key=lambda r: r.line_number)
    for reject in rejects:
        context.report.rejected_by_reason[reject.reason.split(":", 1)[0]] += 1
    context.report.rows_rejected += len(rejects)
    n = len(rejects)
    table = pa.table({
        "state": pa.array([context.state] * n, pa.string()),
        "snapshot": pa.array([context.snapshot] * n, pa.date32()),
        "source_file": pa.array([context.source_file] * n, pa.string()),
        "line_number": pa.array([r.line_number for r in rejects], pa.int64()),
        "raw_line": pa.array([_redact(r.raw_line.replace("\x00", ""), context.detected) for r in rejects],
                             pa.string()),
        "reason": pa.array([r.reason for r in rejects], pa.string()),
    })
    context.writers.rejects.write_table(schema.conform(table, schema.REJECTS))


def _reject_rows(context: LoadContext, parsed: ParsedBlock, mask: np.ndarray, reason: str) -> ParsedBlock:
    """Move rows where `mask` holds into the rejects; return the rest."""
    if not mask.any():
        return parsed
    parsed.rejects.extend(Reject(int(line), parsed.raw_line(int(line)), reason)
                          for line in parsed.line_numbers[mask])
    return parsed.filter(~mask)


def _skip(context: LoadContext, parsed: ParsedBlock, mask: np.ndarray, column: str, reason: str) -> None:
    """Count the rows of `mask` as skipped (not records, not rejects), by reason and raw value."""
    values = pc.utf8_upper(clean_text(parsed.columns[column])).filter(pa.array(mask))
    for item in pc.value_counts(values).to_pylist():
        context.report.skipped_by_reason[f"{reason}: {column}={item['values']}"] += item["counts"]
    context.report.rows_skipped += int(mask.sum())


def _skip_rows(context: LoadContext, parsed: ParsedBlock, spec: FileSpec) -> ParsedBlock:
    """Lines the layout's skip_values say are no records are skipped and counted apart from rejects;
    so are a latest_per_voter file's rows that are not a voter's latest as of the snapshot."""
    if context.keep_lines is not None:
        mask = ~np.isin(parsed.line_numbers, context.keep_lines, assume_unique=True)
        if mask.any():
            _skip(context, parsed, mask, spec.latest_per_voter["column"], "not_the_voters_latest_row")
            parsed = parsed.filter(~mask)
    for column, values in spec.skip_values.items():
        upper = pc.utf8_upper(clean_text(parsed.columns[column]))
        mask = pc.fill_null(pc.is_in(upper, value_set=pa.array(list(values), pa.string())), False) \
            .to_numpy(zero_copy_only=False)
        if mask.any():
            _skip(context, parsed, mask, column, "not_a_record")
            parsed = parsed.filter(~mask)
    return parsed


def _build(context: LoadContext, parsed: ParsedBlock, spec: FileSpec, target: pa.Schema):
    nulled, repaired = NullCounts(), NullCounts()
    fields = build_fields(parsed.columns, spec, context.layout.codes, context.aux, context.snapshot, target,
                          nulled, context.layout.canonical, repaired)
    return fields, nulled, repaired


def _finish(context: LoadContext, parsed: ParsedBlock, spec: FileSpec, target: pa.Schema
            ) -> tuple[dict[str, pa.Array], ParsedBlock]:
    """Canonical fields of the block's rows; "did not vote" history rows (the state's ballot_status
    code table) are skipped, rows without a voter id are rejected."""
    parsed = _skip_rows(context, parsed, spec)
    fields, nulled, repaired = _build(context, parsed, spec, target)
    status = fields.get("ballot_status")
    skip = np.zeros(parsed.num_rows, dtype=bool) if status is None else \
        pc.fill_null(pc.equal(status, "did_not_vote"), False).to_numpy(zero_copy_only=False)
    missing = fields["voter_id"].is_null().to_numpy(zero_copy_only=False) & ~skip
    if skip.any() or missing.any():
        if skip.any():
            _skip(context, parsed, skip, spec.fields["ballot_status"]["column"], "did_not_vote")
        parsed.rejects.extend(Reject(int(line), parsed.raw_line(int(line)), "missing_voter_id")
                              for line in parsed.line_numbers[missing])
        parsed = parsed.filter(~(skip | missing))
        # Recompute on the kept rows so null and repair counts describe loaded rows only.
        fields, nulled, repaired = _build(context, parsed, spec, target)
    context.report.nulled.merge(nulled)
    context.report.repaired.merge(repaired)
    return fields, parsed


def _constant(value, n: int, type_: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n) if n else pa.array([], type_)


def _stamp(context: LoadContext, fields: dict[str, pa.Array], line_numbers: np.ndarray) -> dict[str, pa.Array]:
    n = len(line_numbers)
    fields["state"] = _constant(context.state, n, pa.string())
    fields["snapshot"] = _constant(context.snapshot, n, pa.date32())
    fields["source_file"] = _constant(context.source_file, n, pa.string())
    fields["source_line"] = pa.array(line_numbers, pa.int64())
    return fields


def load_voters(context: LoadContext, parsed: ParsedBlock) -> None:
    report = context.report
    report.rows_read += parsed.lines
    spec = context.detected.spec
    fields, parsed = _finish(context, parsed, spec, schema.VOTERS)
    if "birth_date" in fields:
        derived = pc.cast(pc.year(fields["birth_date"]), pa.int16())
        fields["birth_year"] = pc.coalesce(fields["birth_year"], derived) if "birth_year" in fields else derived
    _stamp(context, fields, parsed.line_numbers)
    n, voter_ids = parsed.num_rows, fields["voter_id"]
    extra = {column: parsed.columns[column] for column in spec.extra if column in parsed.columns}

    def voter_table() -> pa.Table:  # built in the writer's thread: overlaps the next block's parsing
        if extra:
            fields["extra"] = build_extra(extra, spec.extra, n)
        return schema.conform(pa.table(fields), schema.VOTERS)

    if n:
        context.writers.voters.write_table(voter_table)
    report.rows_loaded += n
    _write_rejects(context, parsed.rejects)
    if context.detected.wide_columns:
        _load_wide_history(context, parsed, voter_ids)
    if context.layout.packed_history is not None:
        history_shapes.load_packed_history(context, parsed, voter_ids)
    if context.layout.slot_history is not None:
        history_shapes.load_slot_history(context, parsed, voter_ids)


def load_history(context: LoadContext, parsed: ParsedBlock) -> None:
    report = context.report
    report.rows_read += parsed.lines
    fields, parsed = _finish(context, parsed, context.detected.spec, schema.HISTORY)
    _history_defaults(fields, len(parsed.line_numbers))
    _stamp(context, fields, parsed.line_numbers)
    table = schema.conform(pa.table(fields), schema.HISTORY)
    if table.num_rows:
        context.writers.history.write_table(table)
    report.rows_loaded += table.num_rows
    _write_rejects(context, parsed.rejects)


def _history_defaults(fields: dict[str, pa.Array], n: int) -> None:
    if "election_type" not in fields:
        fields["election_type"] = _constant("other", n, pa.string())
    if "voting_method" not in fields:
        fields["voting_method"] = _constant("unknown", n, pa.string())
    # No code table: every history row of the file is a counted ballot.
    fields["ballot_status"] = pc.fill_null(fields["ballot_status"], "counted") if "ballot_status" in fields \
        else _constant("counted", n, pa.string())


def _load_wide_history(context: LoadContext, parsed: ParsedBlock, voter_ids: pa.Array) -> None:
    """One history row per non-blank election cell of the voter rows (OH TYPE-MM/DD/YYYY columns)."""
    wide = context.layout.wide_history.wide
    codes = context.layout.codes
    pieces = []
    for order, (position, type_raw, date_text) in enumerate(context.detected.wide_columns):
        cells = clean_text(parsed.columns[f"__wide_{position}"])
        voted = cells.is_valid()
        if wide.get("not_voted_values"):
            no_vote = pa.array(list(wide["not_voted_values"]), pa.string())
            not_voted = pc.is_in(pc.utf8_upper(cells), value_set=no_vote)
            voted = pc.and_(voted, pc.invert(pc.fill_null(not_voted, False)))
        count = _count_true(voted)
        if not count:
            continue
        cells = pc.filter(cells, voted)
        election_date, bad, out_of_range = parse_dates(pa.array([date_text]), wide["date"], latest=context.snapshot)
        if bad or out_of_range:
            context.report.nulled.add("election_date", "bad_date" if bad else "date_out_of_range", count)
        type_value = type_raw
        if wide.get("election_type_codes"):
            mapped, _ = map_codes(pa.array([type_raw.upper()]), codes[wide["election_type_codes"]])
            type_value = mapped[0].as_py()
        upper = pc.utf8_upper(cells)
        no_party = pc.is_in(upper, value_set=pa.array(list(wide["no_party_values"]) or [""], pa.string()))
        party = pc.if_else(no_party, pa.scalar(None, pa.string()), upper)
        if wide.get("party_codes"):
            mapped, _ = map_codes(party, codes[wide["party_codes"]])
            party = pc.if_else(party.is_valid(), mapped, pa.scalar(None, pa.string()))
        pieces.append(pa.table({
            "voter_id": pc.filter(voter_ids, voted),
            "election_date": pa.repeat(election_date[0], count) if count else election_date[:0],
            "election_type": _constant(type_value or "other", count, pa.string()),
            "election_type_raw": _constant(type_raw, count, pa.string()),
            "voting_method": _constant("unknown", count, pa.string()),
            "ballot_status": _constant("counted", count, pa.string()),
            "party_ballot": party,
            "source_line": pa.array(parsed.line_numbers[voted.to_numpy(zero_copy_only=False)], pa.int64()),
            "_column_order": pa.array(np.full(count, order, dtype=np.int32)),
        }))
    history_shapes.write_history_pieces(context, pieces, "_column_order")


def _count_true(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def load_aux(context: LoadContext, parsed: ParsedBlock) -> pa.Table:
    report = context.report
    report.rows_read += parsed.lines
    key = context.detected.spec.key
    keys = clean_text(parsed.columns[key])
    missing = keys.is_null().to_numpy(zero_copy_only=False)
    parsed = _reject_rows(context, parsed, missing, f"missing_key: {key}")
    _write_rejects(context, parsed.rejects)
    report.rows_loaded += parsed.num_rows
    return pa.table({name: clean_text(values) for name, values in parsed.columns.items()})


def aux_table(spec: FileSpec, chunks: list[pa.Table]) -> AuxTable:
    """The lookup table of an auxiliary file; keyed "<key_prefix>|<key>" when the spec has a key_prefix."""
    table = pa.concat_tables(chunks) if chunks else pa.table({c: pa.array([], pa.string()) for c in spec.columns})
    keys = table.column(spec.key).combine_chunks()
    if spec.key_prefix:
        keys = pc.binary_join_element_wise(table.column(spec.key_prefix).combine_chunks(), keys, "|")
    return AuxTable(keys, {name: table.column(name).combine_chunks() for name in table.column_names})


def merge_aux(first: AuxTable, second: AuxTable) -> AuxTable:
    """Two files of one auxiliary table (PA: one election map per county) as one lookup."""
    return AuxTable(pa.concat_arrays([first.keys, second.keys]),
                    {name: pa.concat_arrays([first.columns[name], second.columns[name]]) for name in first.columns})
