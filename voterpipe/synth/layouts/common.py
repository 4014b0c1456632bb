"""What every state layout shares: the drop context and vectorised address and district strings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

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
UNIT_TYPES = np.array(["APT", "APT", "APT", "UNIT", "#"], dtype=object)


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

    def column(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        return self.people[name].to_numpy()[self.rows if rows is None else rows]

    def dwelling(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        ids = self.column("dwelling_id", rows)
        return self.dwellings[name].to_numpy()[ids]

    def county(self, attribute: str, rows: np.ndarray | None = None) -> np.ndarray:
        counties = self.profile.counties
        values = np.array([getattr(c, attribute) for c in counties], dtype=object)
        return values[self.column("county_index", rows).astype(np.int64)]


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
    kind: np.ndarray  # street / po_box / rural_route / confidential / removed_marker
    has_unit: np.ndarray

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
        return choose(self.kind == "street", line, self.special_line)

    def secondary(self) -> pa.Array:
        """'APT 4B' or '' (the second address line of OH, FL)."""
        return choose(self.has_unit & (self.kind == "street"), concat(self.unit_type, " ", self.unit), "")

    def zip(self, zip9: np.ndarray) -> pa.Array:
        """Five digits, or nine without a dash for ZIP+4 rows."""
        z = choose(zip9, concat(self.zip5, self.zip4), self.zip5)
        return choose(self.kind == "confidential", "", z)

    special_line: pa.Array = None


def address_parts(ctx: DropContext, mixed_case: bool = True) -> AddressParts:
    """The residential address of each written row from its dwelling, with the state's quirks."""
    kind = ctx.column("addr_kind").astype(object)
    style = ctx.column("type_style")
    seq = ctx.column("seq")
    street_type = ctx.dwelling("street_type").astype(object)
    spelled = by_unique(street_type, lambda t: SPELLED_TYPES.get(t, t))
    name = ctx.dwelling("street_name").astype(object)
    number = ctx.dwelling("house_number").astype(object)
    unit = ctx.dwelling("unit").astype(object)
    has_unit = unit != ""
    type_out = text(np.where(style == 1, spelled, street_type))
    name_out = text(name)
    if mixed_case:
        title = style == 2
        type_out = choose(title, pc.utf8_title(text(spelled)), type_out)
        name_out = choose(title, pc.utf8_title(name_out), name_out)

    street_kind = kind == "street"
    box = ctx.column("box_number").astype(np.int64)
    special = np.where(kind == "po_box", "PO BOX " + box.astype(str).astype(object),
                       np.where(kind == "rural_route",
                                "RR " + (box % 9 + 1).astype(str).astype(object) + " BOX " + (box % 400 + 1).astype(str).astype(object),
                                np.where(kind == "removed_marker", "REMOVED", ""))).astype(object)
    blank = kind == "confidential"
    parts = AddressParts(
        number=text(np.where(street_kind, number, "")),
        pre_dir=text(np.where(street_kind, ctx.dwelling("pre_dir").astype(object), "")),
        name=choose(street_kind, name_out, ""),
        street_type=choose(street_kind, type_out, ""),
        post_dir=text(np.where(street_kind, ctx.dwelling("post_dir").astype(object), "")),
        unit=text(np.where(street_kind, unit, "")),
        unit_type=text(np.where(street_kind & has_unit, UNIT_TYPES[seq % len(UNIT_TYPES)], "")),
        city=text(np.where(blank, "", ctx.dwelling("city").astype(object))),
        zip5=text(np.where(blank, "", ctx.dwelling("zip5").astype(object))),
        zip4=text(np.where(blank, "", ctx.dwelling("zip4").astype(object))),
        kind=kind, has_unit=has_unit & street_kind,
    )
    parts.special_line = text(special)
    return parts


def mailing(ctx: DropContext, parts: AddressParts, state_postal: str) -> dict[str, pa.Array]:
    """Mailing line 1, city, state, zip: 'same' repeats the residence single-spaced, else a PO box."""
    mail_kind = ctx.column("mail_kind")
    same = (mail_kind == "same") & (parts.kind == "street")
    box = (mail_kind == "po_box") | ((mail_kind == "same") & (parts.kind != "street") & (parts.kind != "confidential"))
    box &= parts.kind != "confidential"
    any_mail = same | box
    line1 = choose(same, parts.line(unit_in_line=True), choose(box, concat("PO BOX ", text(ctx.column("box_number").astype(str))), ""))
    return {
        "line1": line1,
        "city": choose(any_mail, text(ctx.dwelling("city").astype(object)), ""),
        "state": choose(any_mail, state_postal, ""),
        "zip": choose(any_mail, text(ctx.dwelling("zip5").astype(object)), ""),
    }


def precinct_numbers(ctx: DropContext, rows: np.ndarray | None = None) -> np.ndarray:
    """A precinct number per row (positions in ctx.people), unique within a county."""
    return ctx.dwelling("precinct", rows).astype(np.int64)


def by_unique(values: np.ndarray, fn) -> np.ndarray:
    """fn applied once per distinct value (hash-based), spread back over the rows."""
    codes, uniques = pd.factorize(np.asarray(values), use_na_sentinel=False)
    table = np.array([fn(v) for v in uniques] + [None], dtype=object)[:-1] if len(uniques) else np.zeros(0, object)
    return table[codes] if len(codes) else np.zeros(0, dtype=object)


def strip_zeros(values: np.ndarray) -> np.ndarray:
    """District codes without zero padding ('06' -> '6'), as some states write them."""
    return values.astype(np.int64).astype(str).astype(object)


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
