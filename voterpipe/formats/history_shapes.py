"""History carried inside the voter file in two more shapes: tokens packed in one column (NY
VoterHistory) and numbered slots resolved by an election map (PA FVE); each becomes long history rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe import schema
from voterpipe.formats.layouts import slot_columns
from voterpipe.formats.normalise import clean_text, map_codes, parse_dates
from voterpipe.formats.readers import ParsedBlock

if TYPE_CHECKING:
    from voterpipe.formats.loading import LoadContext


def _constant(value, n: int, type_: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), n) if n else pa.array([], type_)


def write_history_pieces(context: "LoadContext", pieces: list[pa.Table], order_column: str) -> None:
    """History rows read from columns of the voter file, in line order then in `order_column`
    (the election's column or slot), stamped with state, snapshot and file, and written."""
    if not pieces:
        return
    table = pa.concat_tables(pieces).sort_by([("source_line", "ascending"), (order_column, "ascending")])
    n = table.num_rows
    table = table.append_column("state", _constant(context.state, n, pa.string()))
    table = table.append_column("snapshot", _constant(context.snapshot, n, pa.date32()))
    table = table.append_column("source_file", _constant(context.source_file, n, pa.string()))
    context.writers.history.write_table(schema.conform(table, schema.HISTORY))
    context.report.history_rows += n


def _count_true(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _token_parts(tokens: pa.Array, patterns: list) -> tuple[dict[str, pa.Array], pa.Array]:
    """Each token's date/type/method text by the first pattern it matches; and which matched."""
    parts = {name: pa.nulls(len(tokens), pa.string()) for name in ("date", "type", "method")}
    matched = pa.array(np.zeros(len(tokens), dtype=bool))
    for pattern in patterns:
        found = pc.extract_regex(tokens, pattern.pattern)
        hit = pc.and_(pc.fill_null(found.is_valid(), False), pc.invert(matched))
        for name in pattern.groupindex:
            parts[name] = pc.if_else(hit, pc.struct_field(found, name), parts[name])
        matched = pc.or_(matched, hit)
    return {name: clean_text(values) for name, values in parts.items()}, matched


def load_packed_history(context: LoadContext, parsed: ParsedBlock, voter_ids: pa.Array) -> None:
    """One history row per token of the packed column (NY VoterHistory '20241105 GE(P);...');
    tokens no pattern reads (legacy free text with a year only) are counted, not loaded."""
    packed, codes, nulled = context.layout.packed_history.wide, context.layout.codes, context.report.nulled
    cells = pc.fill_null(clean_text(parsed.columns[packed["column"]]), "")
    lists = pc.split_pattern(cells, packed["separator"])
    parents = pc.list_parent_indices(lists)
    tokens = clean_text(pc.list_flatten(lists))
    present = tokens.is_valid()
    tokens, parents = tokens.filter(present), parents.filter(present)
    parts, matched = _token_parts(tokens, packed["token_patterns"])
    nulled.add("election_date", "unread_history_token", len(tokens) - _count_true(matched))
    election_date, bad, out_of_range = parse_dates(parts["date"], packed["date"], latest=context.snapshot)
    nulled.add("election_date", "bad_date", bad)
    nulled.add("election_date", "date_out_of_range", out_of_range)
    keep = pc.and_(matched, election_date.is_valid())
    n = _count_true(keep)
    if not n:
        return
    rows = parents.filter(keep)
    table = {"voter_id": pc.take(voter_ids, rows), "election_date": election_date.filter(keep)}
    for name, part, fallback in (("election_type", "type", "other"), ("voting_method", "method", "unknown")):
        raw, code_table = parts[part].filter(keep), packed.get(f"{name}_codes")
        table[name] = pc.fill_null(map_codes(raw, codes[code_table])[0] if code_table else raw, fallback)
        table[f"{name}_raw"] = raw
    table.update(ballot_status=_constant("counted", n, pa.string()), party_ballot=pa.nulls(n, pa.string()),
                 source_line=pa.array(parsed.line_numbers[rows.to_numpy(zero_copy_only=False)], pa.int64()),
                 state=_constant(context.state, n, pa.string()), snapshot=_constant(context.snapshot, n, pa.date32()),
                 source_file=_constant(context.source_file, n, pa.string()))
    context.writers.history.write_table(schema.conform(pa.table(table), schema.HISTORY))
    context.report.history_rows += n


def load_slot_history(context: LoadContext, parsed: ParsedBlock, voter_ids: pa.Array) -> None:
    """One history row per filled slot of the voter rows (PA: method and party of election n, whose
    date and title the county's election map gives)."""
    slots, codes = context.layout.slot_history, context.layout.codes
    options, elections = slots.wide, context.aux[slots.wide["lookup"]]
    county = clean_text(parsed.columns[options["county_column"]]) if options.get("county_column") else None
    pieces = []
    for n, method_column, party_column in slot_columns(slots):
        method = clean_text(parsed.columns[method_column])
        voted = method.is_valid()
        count = _count_true(voted)
        if not count:
            continue
        key = pa.array([str(n)] * count, pa.string())
        key = pc.binary_join_element_wise(county.filter(voted), key, "|") if county is not None else key
        raw_date, missing = elections.lookup(key, options["date_column"])
        context.report.nulled.add("election_date", "unknown_lookup_key", missing)
        election_date, bad, out_of_range = parse_dates(clean_text(raw_date), options["date"], latest=context.snapshot)
        context.report.nulled.add("election_date", "bad_date" if bad else "date_out_of_range", bad + out_of_range)
        title = clean_text(elections.lookup(key, options["type_column"])[0]) if options.get("type_column") else None
        method = method.filter(voted)
        party = clean_text(parsed.columns[party_column]).filter(voted) if party_column else None
        pieces.append(pa.table({
            "voter_id": voter_ids.filter(voted), "election_date": election_date,
            "election_type": _mapped(title, codes, options.get("election_type_codes"), "other", count),
            "election_type_raw": title if title is not None else pa.nulls(count, pa.string()),
            "voting_method": _mapped(method, codes, options.get("voting_method_codes"), "unknown", count),
            "voting_method_raw": method, "ballot_status": _constant("counted", count, pa.string()),
            "party_ballot": _mapped(party, codes, options.get("party_codes"), None, count),
            "source_line": pa.array(parsed.line_numbers[voted.to_numpy(zero_copy_only=False)], pa.int64()),
            "_slot": pa.array(np.full(count, n, dtype=np.int32))}))
    write_history_pieces(context, pieces, "_slot")


def _mapped(values: pa.Array | None, codes: dict, table: str | None, fallback: str | None, n: int) -> pa.Array:
    if values is None:
        return _constant(fallback, n, pa.string()) if fallback else pa.nulls(n, pa.string())
    mapped = map_codes(values, codes[table])[0] if table else values
    return pc.fill_null(mapped, fallback) if fallback else mapped
