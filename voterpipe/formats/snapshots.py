"""The first pass over a voter file holding several snapshots ([voters] latest_per_voter): per voter
id, the one line to load. It reads only the id and date columns, without a CSV parser when the file
is unquoted (fields are then exactly the text between delimiters)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.formats.background import prefetch
from voterpipe.formats.layouts import Detected
from voterpipe.formats.loading import parse_blocks
from voterpipe.formats.normalise import clean_text, parse_dates
from voterpipe.formats.decoding import TextBlocks, is_gzip
from voterpipe.formats.readers import ParsedBlock, line_bounds


# A file up to this size (uncompressed, not .gz) is read once: its parsed blocks are held until the
# lines to load are known. A larger one is read twice (ids and dates first), so memory stays bounded.
ONE_PASS_MAX_BYTES = 64 << 20


def read_once(blocks: TextBlocks) -> bool:
    """Whether a latest_per_voter file is small enough to be parsed once and held (ONE_PASS_MAX_BYTES)."""
    return not is_gzip(blocks.path) and blocks.total_bytes <= ONE_PASS_MAX_BYTES


def latest_lines(blocks: TextBlocks, detected: Detected, snapshot: date) -> np.ndarray:
    """The lines to load of a file with [voters] latest_per_voter: per voter id, the line of its
    latest row dated on or before the snapshot (the first such line on a tie). Lines the reading
    pass rejects (wrong field count, blank) are never chosen."""
    spec = detected.spec
    id_column, dated = spec.fields["voter_id"]["column"], spec.latest_per_voter
    return latest_of_blocks(_id_and_date_blocks(blocks, detected, [id_column, dated["column"]]), detected, snapshot)


def latest_of_blocks(parsed_blocks, detected: Detected, snapshot: date) -> np.ndarray:
    """latest_lines() from ParsedBlocks holding the file's voter id and date columns."""
    spec = detected.spec
    id_column, dated = spec.fields["voter_id"]["column"], spec.latest_per_voter
    pieces = []
    for parsed in parsed_blocks:
        day, _, _ = parse_dates(clean_text(parsed.columns[dated["column"]]), dated["date"], latest=snapshot)
        pieces.append(pa.table({"id": clean_text(parsed.columns[id_column]), "day": day,
                                "line": pa.array(parsed.line_numbers, pa.int64())}))
    if not pieces:
        return np.zeros(0, dtype=np.int64)
    rows = pa.concat_tables(pieces)
    no_id = rows.filter(rows["id"].is_null())["line"].to_numpy()  # loaded, so rejected for the missing id
    rows = rows.filter(pc.and_(rows["id"].is_valid(), rows["day"].is_valid()))
    rows = rows.sort_by([("id", "ascending"), ("day", "descending"), ("line", "ascending")])
    ids = rows["id"].combine_chunks()
    first = np.ones(len(ids), dtype=bool)
    first[1:] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    return np.sort(np.concatenate([rows["line"].to_numpy()[first], no_id]))


def _id_and_date_blocks(blocks: TextBlocks, detected: Detected, columns: list[str]):
    """ParsedBlocks of the two columns: by delimiter search for an unquoted delimited file, else parse_blocks."""
    spec = detected.spec
    if spec.fixed_width or spec.quote or detected.delimiter is None or len(detected.delimiter) != 1:
        yield from parse_blocks(blocks, detected, columns=columns)
        return
    include = {name: detected.column_index[name] for name in columns if name in detected.column_index}
    next_line = 1
    for block in prefetch(blocks):
        if next_line == 1 and detected.has_header:
            block, next_line = block[block.find(b"\n") + 1:], 2
            if not block:
                continue
        parsed = unquoted_fields(block, next_line, delimiter=detected.delimiter, ncols=detected.field_count,
                                 include=include)
        next_line += parsed.lines
        yield parsed


def unquoted_fields(block: bytes, first_line: int, *, delimiter: str, ncols: int, include: dict[str, int]
                    ) -> ParsedBlock:
    """The rows of an unquoted delimited block that parse_delimited loads (lines of `ncols` fields,
    not blank), with the `include` columns (name -> position); other lines are left out, not rejected."""
    starts, ends = line_bounds(block)
    offsets = np.zeros(len(ends) + 1, dtype=np.int32)
    offsets[1:] = ends + 1
    with_lf = pa.StringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(block))
    fields = pc.count_substring(with_lf, delimiter).to_numpy(zero_copy_only=False) + 1
    good = (fields == ncols) & (ends > starts)
    kept = np.flatnonzero(good)
    last = max(include.values(), default=0)
    # Split no further than the last wanted field: the rest of the line is not scanned again.
    parts = pc.split_pattern(with_lf, delimiter, max_splits=last + 1 if last + 1 < ncols else None)
    first_part = parts.offsets.to_numpy()[:-1][kept]  # kept lines only: others may have fewer fields
    columns = {}
    for name, position in include.items():
        values = parts.values.take(pa.array(first_part + position))
        columns[name] = pc.utf8_rtrim(values, characters="\n") if position == ncols - 1 else values
    return ParsedBlock(columns, first_line + kept.astype(np.int64), [], len(ends), block, first_line, [starts, ends])
