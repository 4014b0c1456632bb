"""Spreadsheet artefacts planted in synthetic voter files (a layout's [synth] artefacts table): ZIPs
and codes written as floats, lost leading zeros, `27517-` and `27517-0000`. Each is recoverable
exactly, so the import must repair it (formats/repair.py) and count it under values_repaired.

    [synth]
    artefacts = { float_zip = 0.03, zip_dash = 0.01, zip_plus4_zeros = 0.01, float_code = 0.02 }

Rates are per written row and column; damaged rows (the ledger's) carry none. Which columns: the
one the res_zip5 field reads, and those of the code fields ([canonical]) that read one column.
A layout of a state whose ZIPs begin with 0 ([canonical] zip_leading_zero) and without an
artefacts table gets lost zeros (02134 -> 2134) and floats (02134 -> 2134.0) at the drop's dirty
rate each; `artefacts = {}` plants none.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.formats.layouts import FileSpec, Layout
from voterpipe.formats.repair import CODE_FIELDS
from voterpipe.synth.render import Column, choose

ZIP_ARTEFACTS = ("float_zip", "zip_dash", "zip_plus4_zeros", "lost_zero_zip")
CODE_ARTEFACTS = ("float_code", "lost_zero_code")
ARTEFACT_KINDS = ZIP_ARTEFACTS + CODE_ARTEFACTS


def check_rates(where: str, rates: dict) -> dict[str, float]:
    unknown = set(rates) - set(ARTEFACT_KINDS)
    if unknown:
        raise ValueError(f"{where}: [synth] artefacts has unknown kinds {sorted(unknown)}; known: {ARTEFACT_KINDS}")
    return {kind: float(rate) for kind, rate in rates.items()}


def artefact_rates(layout: Layout, dirty_rate: float) -> dict[str, float]:
    """The layout's [synth] artefacts, or for a 0-leading-ZIP state without that table, its lost
    zeros and float ZIPs at the dirty rate."""
    rates = layout.synth.get("artefacts")
    if rates is None and layout.canonical.zip_leading_zero:
        rates = {"lost_zero_zip": dirty_rate, "float_zip": dirty_rate}
    return check_rates(layout.source.name, rates or {})


def _targets(layout: Layout, spec: FileSpec, written: list[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(canonical field, written column, artefact kinds that fit it)."""
    out = []
    zip_column = spec.fields.get("res_zip5", {}).get("column")
    if zip_column in written:
        kinds = ZIP_ARTEFACTS if layout.canonical.zip_leading_zero else ZIP_ARTEFACTS[:3]
        out.append(("res_zip5", zip_column, kinds))
    for name in CODE_FIELDS:
        form = layout.canonical.code_forms.get(name)
        column = spec.fields.get(name, {}).get("column")
        if form is None or column not in written or "join" in spec.fields[name] or form.name == "as_delivered":
            continue  # a float of an as-delivered code may have lost a zero the import cannot know
        if any(column == taken for _, taken, _ in out):
            continue  # one column, several fields (WA LegislativeDistrict): planted once
        out.append((name, column, CODE_ARTEFACTS if form.name == "pad" else CODE_ARTEFACTS[:1]))
    return out


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(values, pattern), False).to_numpy(zero_copy_only=False)


def _apply(kind: str, values: pa.Array, chosen: np.ndarray, zip_leading_zero: bool) -> tuple[pa.Array, np.ndarray]:
    """(values with the artefact on the chosen rows it fits, the rows it was planted on). A ZIP
    loses at most one zero, and only in a state whose ZIPs begin with 0: the import restores one."""
    if kind == "float_zip":  # the spreadsheet's number: 27517.0, or 2134.0 for 02134
        unrecoverable = r"^00" if zip_leading_zero else r"^0"
        hit = chosen & _matches(values, r"^(\d{5}|\d{9})$") & ~_matches(values, unrecoverable)
        as_float = pc.binary_join_element_wise(pc.replace_substring_regex(values, r"^0", ""), ".0", "")
        return choose(hit, as_float, values), hit
    if kind == "lost_zero_zip":
        hit = chosen & _matches(values, r"^0[1-9](\d{3}|\d{7})$")
        return choose(hit, pc.replace_substring_regex(values, r"^0", ""), values), hit
    if kind in ("zip_dash", "zip_plus4_zeros"):
        hit = chosen & _matches(values, r"^\d{5}$")
        suffix = "-" if kind == "zip_dash" else "-0000"
        return choose(hit, pc.binary_join_element_wise(values, suffix, ""), values), hit
    if kind == "lost_zero_code":
        hit = chosen & _matches(values, r"^0\d+$")
        return choose(hit, pc.replace_substring_regex(values, r"^0+(\d)", r"\1"), values), hit
    # float_code: the spreadsheet's number, zeros lost and ".0" added
    hit = chosen & _matches(values, r"^\d+$")
    as_float = pc.binary_join_element_wise(pc.replace_substring_regex(values, r"^0+(\d)", r"\1"), ".0", "")
    return choose(hit, as_float, values), hit


def plant(layout: Layout, spec: FileSpec, written: list[str], columns: list[Column], seed: int,
          clean: np.ndarray, dirty_rate: float = 0.0) -> tuple[list[Column], dict[str, dict[str, np.ndarray]]]:
    """(columns with artefacts, field -> kind -> rows planted). `clean`: rows that may carry one."""
    rates = artefact_rates(layout, dirty_rate)
    planted: dict[str, dict[str, np.ndarray]] = {}
    if not rates:
        return columns, planted
    columns = list(columns)
    rng = np.random.default_rng([seed, 1212])
    for field_name, column, kinds in _targets(layout, spec, written):
        at = written.index(column)
        if isinstance(columns[at], str):
            continue
        u = rng.random(len(clean))
        start = 0.0
        for kind in kinds:
            rate = rates.get(kind, 0.0)
            chosen = clean & (u >= start) & (u < start + rate)
            start += rate
            if chosen.any():
                columns[at], hit = _apply(kind, columns[at], chosen, layout.canonical.zip_leading_zero)
                planted.setdefault(field_name, {})[kind] = hit
    return columns, planted
