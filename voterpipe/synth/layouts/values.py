"""The values a synthetic file can hold, by source name, and the options a layout's [synth] table sets on them.

A source turns a Frame (the people behind the rows of one file) into one column: an Arrow string
array, or numpy dates/integers that the column's options format. State hooks add sources named
"<state>.<name>" (see hooks()).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe.synth.layouts.common import (
    AddressParts, DropContext, address_parts, by_unique, dates, election_dates, mailing, pick)
from voterpipe.synth.render import Column, choose, concat, text

HOOK_MODULES = ("nc", "oh", "fl", "mi", "wa")
Value = pa.Array | np.ndarray | str


@dataclass
class Frame:
    """The rows of one file: people positions, and for history the election and a uniform per row."""

    ctx: DropContext
    rows: np.ndarray
    postal: str  # the state's postal code, written in state columns
    synth: dict  # the layout's [synth] table
    election: np.ndarray | None = None
    u: np.ndarray | None = None
    role: str = "voters"
    column_spec: dict = field(default_factory=dict)  # the options of the column being written
    _cache: dict = field(default_factory=dict, repr=False)

    def cached(self, key: str, make: Callable):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def parts(self) -> AddressParts:
        style = self.synth.get("address", {})
        return self.cached("parts", lambda: address_parts(self.ctx, mixed_case=style.get("mixed_case", True),
                                                          spelled_types=style.get("spelled_types", True)))

    @property
    def mail(self) -> dict[str, pa.Array]:
        return self.cached("mail", lambda: mailing(self.ctx, self.parts, self.postal))

    def text(self, name: str) -> pa.Array:
        return self.ctx.text(name, self.rows)

    def column(self, name: str) -> np.ndarray:
        return self.ctx.column(name, self.rows)

    def is_value(self, name: str, value: str) -> np.ndarray:
        return self.ctx.is_value(name, value, self.rows)

    def confidential(self) -> np.ndarray:
        return self.is_value("addr_kind", "confidential")

    def elections(self, attribute: Callable) -> np.ndarray:
        """A per-election value spread over the history rows."""
        return np.array([attribute(e) for e in self.ctx.elections], dtype=object)[self.election]


SOURCES: dict[str, Callable[[Frame], Value]] = {}


def source(name: str):
    def register(fn: Callable[[Frame], Value]):
        SOURCES[name] = fn
        return fn
    return register


def _truth_text(name: str, column: str) -> None:
    SOURCES[name] = lambda f: f.text(column)


for _name, _column in (("voter_id", "voter_id"), ("last_name", "last_name"), ("first_name", "first_name"),
                       ("middle_name", "middle_name"), ("name_suffix", "name_suffix"), ("gender", "gender"),
                       ("race", "race"), ("ethnic", "ethnic"), ("birth_state", "birth_state"),
                       ("drivers_lic", "drivers_lic"), ("party", "party_raw"), ("party_ballot", "party_first_raw"),
                       ("status", "status_raw"), ("status_reason", "status_reason")):
    _truth_text(_name, _column)


def _by_raw(values: pa.Array, table: dict[str, str]) -> pa.Array:
    return by_unique(values, lambda v: table.get(v, ""))


@source("status_description")
def _status_description(f: Frame) -> pa.Array:
    return _by_raw(f.text("status_raw"), {s.raw: s.description for s in f.ctx.profile.statuses})


@source("status_reason_description")
def _reason_description(f: Frame) -> pa.Array:
    return _by_raw(f.text("status_reason"), {r: d for s in f.ctx.profile.statuses for r, d in s.reasons})


@source("party_description")
def _party_description(f: Frame) -> pa.Array:
    return _by_raw(f.text("party_raw"), {p.raw: p.description for p in f.ctx.profile.parties})


source("birth_date")(lambda f: f.column("birth_date"))
source("registered_on")(lambda f: f.column("registered_on"))
source("birth_year")(lambda f: f.column("birth_date").astype("datetime64[Y]").astype(np.int64) + 1970)
source("age")(lambda f: f.ctx.snapshot.year - (f.column("birth_date").astype("datetime64[Y]").astype(np.int64) + 1970))
source("county_code")(lambda f: f.ctx.county("county_code", f.rows))
source("county_name")(lambda f: f.ctx.county("county_name", f.rows))
source("county_local_id")(lambda f: f.column("county_local_id").astype(np.int64))
source("seq")(lambda f: f.column("seq").astype(np.int64))
source("precinct")(lambda f: f.ctx.dwelling("precinct", f.rows).astype(np.int64))
source("city")(lambda f: f.ctx.dwelling_text("city", f.rows))
source("confidential")(lambda f: choose(f.confidential(), "Y", "N"))
source("phone")(lambda f: f.ctx.phone(f.rows))
source("row_number")(lambda f: np.arange(1, len(f.rows) + 1, dtype=np.int64))
source("ethnicity")(lambda f: f.text("ethnic"))
source("municipality")(lambda f: f.ctx.dwelling_text("city", f.rows))
source("vtd")(lambda f: f.ctx.dwelling("precinct", f.rows).astype(np.int64))
source("county_registration_number")(lambda f: f.column("county_local_id").astype(np.int64))
for _name in ("ward", "school_district", "precinct_name"):  # blank unless a layout's [synth] says more
    SOURCES[_name] = lambda f: ""
for _name, _column in (("congressional_district", "cd119fp"), ("state_senate_district", "sldust"),
                       ("state_house_district", "sldlst")):
    SOURCES[_name] = (lambda c: lambda f: f.ctx.district(c, f.rows, pad=False))(_column)


def _phone_part(f: Frame, start: int, stop: int) -> pa.Array:
    phone = f.ctx.phone(f.rows)
    real = (pc.utf8_length(phone).to_numpy(zero_copy_only=False) == 10) & ~f.confidential()
    return choose(real, pc.utf8_slice_codeunits(phone, start, stop), "")


source("phone_area_code")(lambda f: _phone_part(f, 0, 3))
source("phone_number")(lambda f: _phone_part(f, 3, 10))

# Residential address: the street line (PO boxes and rural routes as written) or its pieces.
source("res_address_line")(lambda f: f.parts.line())
source("res_address_line_with_unit")(lambda f: f.parts.line(unit_in_line=True))
source("res_house_number")(lambda f: f.parts.number)
source("res_pre_dir")(lambda f: f.parts.pre_dir)
source("res_street_name")(lambda f: choose(f.parts.street_kind, f.parts.name, f.parts.special_line))
# 'W MAIN ST': the street without its number, for states whose street column holds the suffix too
source("res_street")(lambda f: f.parts.special(f.parts.street()))
source("res_street_type")(lambda f: f.parts.street_type)
source("res_post_dir")(lambda f: f.parts.post_dir)
source("res_unit")(lambda f: f.parts.secondary())
source("res_unit_type")(lambda f: f.parts.unit_type)
source("res_unit_number")(lambda f: f.parts.unit)
source("res_city")(lambda f: f.parts.city)
source("res_state")(lambda f: choose(f.parts.confidential, "", f.postal))
source("res_zip")(lambda f: f.parts.zip(f.column("zip9")))
source("res_zip5")(lambda f: f.parts.zip5)
source("res_zip4")(lambda f: choose(f.column("zip9") & f.parts.street_kind, f.parts.zip4, ""))
source("mail_address_line")(lambda f: f.mail["line1"])
source("mail_city")(lambda f: f.mail["city"])
source("mail_state")(lambda f: f.mail["state"])
source("mail_zip")(lambda f: f.mail["zip"])
source("res_house_number_suffix")(lambda f: "")


@source("mail_city_line")
def _mail_city_line(f: Frame) -> pa.Array:
    """'LANSING, MI 48910' for rows with a mailing address."""
    mail = f.mail
    line = concat(mail["city"], ", ", mail["state"], " ", mail["zip"])
    return choose(pc.equal(mail["city"], "").to_numpy(zero_copy_only=False), "", line)

# History rows.
source("election_date")(lambda f: election_dates(f.ctx, f.election))
source("election_type")(lambda f: by_unique(f.elections(lambda e: e.label), str))
source("election_code")(lambda f: by_unique(f.election, lambda k: election_code(f.ctx.elections[k].on, k)))


def election_code(on: date, index: int) -> str:
    return f"{on.strftime('%Y%m%d')}{index:05d}"


@source("voting_method")
def _voting_method(f: Frame) -> pa.Array:
    """A method per history row from [synth.history] voting_methods: shares, by era or election day."""
    eras = f.synth.get("history", {}).get("voting_methods")
    if not eras:
        return pa.array([""] * len(f.rows), type=pa.string())
    if isinstance(eras, dict):
        eras = [{"shares": eras}]
    day = election_dates(f.ctx, f.election)
    era = np.full(len(day), -1, dtype=np.int64)
    for k, spec in enumerate(eras):  # later entries win; an "on" entry covers that day only
        if "on" in spec:
            hit = day == np.datetime64(spec["on"], "D")
        else:
            hit = day >= np.datetime64(spec.get("since", date(1900, 1, 1)), "D")
        era[hit] = k
    names, index = [], np.zeros(len(day), dtype=np.int64)
    for k, spec in enumerate(eras):
        hit = era == k
        shares = spec["shares"]
        index[hit] = len(names) + pick(f.u[hit], list(shares.values()))
        names.extend(shares)
    return pa.array(names, type=pa.string()).take(pa.array(index))


@source("election_date_and_type")
def _dated_label(f: Frame) -> pa.Array:
    """'11/08/2016 GENERAL' (the date in the column's date format)."""
    fmt = f.column_spec.get("date", "%m/%d/%Y")
    return by_unique(f.election, lambda k: f"{f.ctx.elections[k].on.strftime(fmt)} {f.ctx.elections[k].label}")


def hooks() -> None:
    """Import the state modules so their '<state>.<name>' sources are registered."""
    for module in HOOK_MODULES:
        importlib.import_module(f"voterpipe.synth.layouts.{module}")


def bad_date(fmt: str) -> str:
    """February 30th 2019 written in `fmt` (a planted impossible date)."""
    return fmt.replace("%m", "02").replace("%d", "30").replace("%Y", "2019").replace("%y", "19")


def evaluate(frame: Frame, spec: dict, where: str) -> Column:
    """One column's values from its spec: {source or value, date, offset, map, default, template, pad, ...}."""
    if "value" in spec:
        values: Column = str(spec["value"])
    else:
        name = spec["source"]
        if name not in SOURCES:
            hooks()
        if name not in SOURCES:
            raise ValueError(f"{where}: unknown synthetic source {name!r}")
        frame.column_spec = spec
        # Several columns often show one source (a precinct code, the county): computed once per file.
        raw = frame.cached(f"source:{name}:{spec.get('date', '')}", lambda: SOURCES[name](frame))
        values = _as_text(raw, spec)
    if "map" in spec:
        table, default = spec["map"], spec.get("default")
        lookup = lambda v: table.get(v, v if default is None else default)  # noqa: E731
        values = lookup(values) if isinstance(values, str) else by_unique(values, lookup)
    if "template" in spec and not isinstance(values, str):
        values = by_unique(values, lambda v: spec["template"].format(v) if v else "")
    if "pad" in spec and not isinstance(values, str):
        values = choose(pc.equal(values, "").to_numpy(zero_copy_only=False), "",
                        pc.utf8_lpad(values, int(spec["pad"]), "0"))
    return _row_overrides(frame, values, spec)


def _as_text(values: Value, spec: dict) -> Column:
    if isinstance(values, str):
        return values
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return dates(values, spec.get("date", "%m/%d/%Y"))
    if isinstance(values, np.ndarray):
        return by_unique(values.astype(np.int64) + int(spec.get("offset", 0)), str)
    return text(values)


def _row_overrides(frame: Frame, values: Column, spec: dict) -> Column:
    """Per-row replacements: placeholder dates, confidential voters' values, blanks every nth voter."""
    if "placeholder" in spec:
        values = choose(frame.column("reg_placeholder"), spec["placeholder"], values)
    if "confidential" in spec:
        values = choose(frame.confidential(), spec["confidential"], values)
    if "blank_every" in spec:
        values = choose(frame.column("seq") % int(spec["blank_every"]) == 0, "", values)
    return values
