"""What every synthetic file draws on: the drop context and vectorised address and district strings.

String columns stay in Arrow (take/concat kernels); numpy is used for numbers and masks. Values
with few distinct members (codes, districts, dates) are formatted once per distinct value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.synth.render import choose, concat, text
from voterpipe.synth.states import Election, StateProfile

SPELLED_TYPES = {
    "ST": "STREET", "AVE": "AVENUE", "RD": "ROAD", "DR": "DRIVE", "LN": "LANE", "CT": "COURT",
    "BLVD": "BOULEVARD", "WAY": "WAY", "PL": "PLACE", "CIR": "CIRCLE", "TRL": "TRAIL", "PKWY": "PARKWAY",
    "HWY": "HIGHWAY",
}
UNIT_TYPES = ["APT", "APT", "APT", "UNIT", "#"]
EPOCH = date(1970, 1, 1)


def by_unique(values, fn: Callable) -> pa.Array:
    """fn applied once per distinct value, spread back over the rows as an Arrow string array."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        encoded = pc.dictionary_encode(values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        uniques, indices = encoded.dictionary.to_pylist(), encoded.indices
    else:
        codes, uniques = pd.factorize(np.asarray(values), use_na_sentinel=False)
        uniques, indices = list(uniques), pa.array(codes)
    table = pa.array([fn(v) for v in uniques], type=pa.string())
    return table.take(indices)


def dates(values: np.ndarray, fmt: str) -> pa.Array:
    """Format datetime64 values with strftime, once per distinct day; NaT becomes ''."""
    days = np.asarray(values).astype("datetime64[D]").view(np.int64)
    nat = np.datetime64("NaT").astype("datetime64[D]").view(np.int64)
    return by_unique(days, lambda d: "" if d == nat else (EPOCH + timedelta(days=int(d))).strftime(fmt))


@dataclass
class DropContext:
    """Everything a layout needs to write one snapshot of one state."""

    profile: StateProfile
    snapshot: date
    seed: int
    people: pd.DataFrame  # the truth, one row per person; history 'person' indexes its rows
    rows: np.ndarray  # positions in `people` written to the voter file, in file order
    dwellings: pd.DataFrame
    history: pd.DataFrame  # person, election, u (all people, including those not in the file)
    elections: list[Election]
    damage: np.ndarray  # int8 damage code per written row
    dirty_rate: float = 0.0  # the drop's share of damaged rows (also the default artefact rate)
    _people: pa.Table = field(default=None, repr=False)
    _dwellings: pa.Table = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._people = pa.Table.from_pandas(self.people, preserve_index=False)
        self._dwellings = pa.Table.from_pandas(self.dwellings, preserve_index=False)

    def _positions(self, rows: np.ndarray | None) -> np.ndarray:
        return self.rows if rows is None else rows

    def column(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """A people column as numpy (use for numbers, booleans, dates)."""
        return self.people[name].to_numpy()[self._positions(rows)]

    def text(self, name: str, rows: np.ndarray | None = None) -> pa.Array:
        """A people string column as Arrow, taken without leaving Arrow."""
        return text(self._people.column(name).take(pa.array(self._positions(rows))))

    def is_value(self, name: str, value: str, rows: np.ndarray | None = None) -> np.ndarray:
        return pc.equal(self._people.column(name).take(pa.array(self._positions(rows))), value) \
            .to_numpy(zero_copy_only=False)

    def phone(self, rows: np.ndarray | None = None) -> pa.Array:
        """The phone number as ten digits, the dummy '0000000', or ''."""
        number = self.column("phone", rows).astype(np.int64)
        digits = text(pa.array(np.maximum(number, 0)))
        return choose(number > 0, digits, choose(number < 0, "0000000", ""))

    def dwelling_ids(self, rows: np.ndarray | None = None) -> np.ndarray:
        return self.people["dwelling_id"].to_numpy()[self._positions(rows)]

    def dwelling(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """A dwelling column for each row, as numpy (numbers)."""
        return self.dwellings[name].to_numpy()[self.dwelling_ids(rows)]

    def dwelling_text(self, name: str, rows: np.ndarray | None = None) -> pa.Array:
        return text(self._dwellings.column(name).take(pa.array(self.dwelling_ids(rows))))

    def county_index(self, rows: np.ndarray | None = None) -> np.ndarray:
        return self.column("county_index", rows).astype(np.int64)

    def county(self, attribute: str, rows: np.ndarray | None = None) -> pa.Array:
        """A CountySpec attribute (county_code, county_name) for each row."""
        values = pa.array([str(getattr(c, attribute)) for c in self.profile.counties], type=pa.string())
        return values.take(pa.array(self.county_index(rows)))

    def district(self, name: str, rows: np.ndarray | None = None, pad: bool = True) -> pa.Array:
        """A dwelling's district code ('cd119fp', 'sldust', 'sldlst'), zero-padded or as an integer."""
        values = self.dwelling_text(name, rows)
        return values if pad else by_unique(values, lambda v: str(int(v)) if v else "")


def squeeze(array: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(array, " {2,}", " "))


@dataclass
class AddressParts:
    """Residential address pieces for the written rows, already in the state's presentation."""

    number: pa.Array
    pre_dir: pa.Array
    name: pa.Array
    street_type: pa.Array
    post_dir: pa.Array
    unit: pa.Array  # unit label only, e.g. "4B"
    unit_type: pa.Array  # APT / UNIT / # (empty without a unit)
    city: pa.Array
    zip5: pa.Array
    zip4: pa.Array
    street_kind: np.ndarray  # the address is the dwelling's street address
    confidential: np.ndarray
    has_unit: np.ndarray
    special_line: pa.Array  # PO BOX / RR / REMOVED / '' for rows without a street address

    def street(self) -> pa.Array:
        """'W MAIN ST' (no number, no unit)."""
        return squeeze(pc.binary_join_element_wise(self.pre_dir, self.name, self.street_type, self.post_dir, " "))

    def line(self, unit_in_line: bool = False) -> pa.Array:
        """One-line address: '123 W MAIN ST' (+ ' APT 4B'); PO boxes and rural routes as written."""
        line = squeeze(concat(self.number, " ", self.street()))
        if unit_in_line:
            line = choose(self.has_unit, concat(line, " ", self.unit_type, " ", self.unit), line)
        return self.special(line)

    def special(self, line: pa.Array) -> pa.Array:
        """Replace the street line of PO-box, rural-route and withheld rows."""
        return choose(self.street_kind, line, self.special_line)

    def secondary(self) -> pa.Array:
        """'APT 4B' or '' (the second address line of OH, FL)."""
        return choose(self.has_unit, concat(self.unit_type, " ", self.unit), "")

    def zip(self, zip9: np.ndarray) -> pa.Array:
        """Five digits, or nine without a dash for ZIP+4 rows."""
        return choose(zip9 & self.street_kind, concat(self.zip5, self.zip4), self.zip5)


def address_parts(ctx: DropContext, mixed_case: bool = True, spelled_types: bool = True) -> AddressParts:
    """The residential address of each written row from its dwelling, with the state's quirks."""
    street_kind = ctx.is_value("addr_kind", "street")
    confidential = ctx.is_value("addr_kind", "confidential")
    style = ctx.column("type_style")
    street_type = ctx.dwelling_text("street_type")
    spelled = by_unique(street_type, lambda t: SPELLED_TYPES.get(t, t))
    type_out = choose(style == 1, spelled, street_type) if spelled_types else street_type
    name_out = ctx.dwelling_text("street_name")
    if mixed_case:
        title = style == 2
        type_out = choose(title, pc.utf8_title(spelled), type_out)
        name_out = choose(title, pc.utf8_title(name_out), name_out)
    unit = ctx.dwelling_text("unit")
    has_unit = pc.not_equal(unit, "").to_numpy(zero_copy_only=False) & street_kind

    box = ctx.column("box_number").astype(np.int64)
    po_box = by_unique(box, lambda b: f"PO BOX {b}")
    rural = by_unique(box, lambda b: f"RR {b % 9 + 1} BOX {b % 400 + 1}")
    special = choose(ctx.is_value("addr_kind", "po_box"), po_box,
                     choose(ctx.is_value("addr_kind", "rural_route"), rural,
                            choose(ctx.is_value("addr_kind", "removed_marker"), "REMOVED", "")))
    # One designator per dwelling, so the people of one apartment agree on it.
    unit_types = by_unique(ctx.dwelling_ids() % len(UNIT_TYPES), lambda i: UNIT_TYPES[i])
    return AddressParts(
        number=choose(street_kind, ctx.dwelling_text("house_number"), ""),
        pre_dir=choose(street_kind, ctx.dwelling_text("pre_dir"), ""),
        name=choose(street_kind, name_out, ""),
        street_type=choose(street_kind, type_out, ""),
        post_dir=choose(street_kind, ctx.dwelling_text("post_dir"), ""),
        unit=choose(has_unit, unit, ""),
        unit_type=choose(has_unit, unit_types, ""),
        city=choose(confidential, "", ctx.dwelling_text("city")),
        zip5=choose(confidential, "", ctx.dwelling_text("zip5")),
        zip4=choose(confidential, "", ctx.dwelling_text("zip4")),
        street_kind=street_kind, confidential=confidential, has_unit=has_unit, special_line=special,
    )


def mailing(ctx: DropContext, parts: AddressParts, state_postal: str) -> dict[str, pa.Array]:
    """Mailing line 1, city, state, zip: 'same' repeats the residence single-spaced, else a PO box."""
    same = ctx.is_value("mail_kind", "same") & parts.street_kind
    box = (ctx.is_value("mail_kind", "po_box") | (ctx.is_value("mail_kind", "same") & ~parts.street_kind)) \
        & ~parts.confidential & ~ctx.is_value("addr_kind", "removed_marker")
    any_mail = same | box
    po_box = by_unique(ctx.column("box_number").astype(np.int64), lambda b: f"PO BOX {b}")
    return {
        "line1": choose(same, parts.line(unit_in_line=True), choose(box, po_box, "")),
        "city": choose(any_mail, ctx.dwelling_text("city"), ""),
        "state": choose(any_mail, state_postal, ""),
        "zip": choose(any_mail, ctx.dwelling_text("zip5"), ""),
    }


def pick(u: np.ndarray, shares: list[float]) -> np.ndarray:
    """Index of the share that uniform `u` falls into."""
    cumulative = np.cumsum(np.asarray(shares, dtype=float))
    return np.minimum(np.searchsorted(cumulative / cumulative[-1], u, side="right"), len(shares) - 1)


def history_rows(ctx: DropContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(person positions, election indexes, uniforms) of the history file, sorted like the voter file."""
    h = ctx.history
    person = h["person"].to_numpy()
    county = ctx.people["county_index"].to_numpy()[person]
    local = ctx.people["county_local_id"].to_numpy()[person]
    order = np.lexsort((h["election"].to_numpy(), local, county))
    return person[order], h["election"].to_numpy()[order], h["u"].to_numpy()[order]


def election_dates(ctx: DropContext, election_idx: np.ndarray) -> np.ndarray:
    days = np.array([np.datetime64(e.on, "D") for e in ctx.elections], dtype="datetime64[D]")
    return days[election_idx]
