"""Options beyond a plain delimited file, read from a layout's TOML tables and checked: history as
tokens packed in one voter column, history in numbered slots resolved by an election map, and a voter
file holding several snapshots (config/formats/README.md)."""

from __future__ import annotations

import re


class OptionError(ValueError):
    """An option table cannot work; the layouts module names the file."""


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def packed_options(doc: dict) -> dict:
    """[history] shape = "packed": tokens in one voter column, each read by the first pattern that matches."""
    patterns = [re.compile(p) for p in _as_list(doc.get("token_patterns", []))]
    if not doc.get("column") or not patterns:
        raise OptionError("packed history needs column and token_patterns")
    if any("date" not in p.groupindex or set(p.groupindex) - {"date", "type", "method"} for p in patterns):
        raise OptionError("token_patterns need a group 'date' (and may have 'type', 'method')")
    return {"column": doc["column"], "separator": doc.get("separator", ";"), "token_patterns": patterns,
            "date": _as_list(doc.get("date", ["%Y%m%d"])), "election_type_codes": doc.get("election_type_codes"),
            "voting_method_codes": doc.get("voting_method_codes")}


def slot_options(doc: dict) -> dict:
    """[history] shape = "slots": slot n (1..slots) of a voter row is its method_column (blank: no
    vote) and party_column; its election's date and title come from an aux table keyed by slot number
    (qualified by the voter row's county_column when the aux table has a key_prefix)."""
    needed = ("slots", "method_column", "lookup", "date_column")
    if any(key not in doc for key in needed) or "{n}" not in doc["method_column"]:
        raise OptionError(f"slot history needs {list(needed)}; method_column with {{n}}")
    keys = ("slots", "method_column", "party_column", "lookup", "county_column", "date_column", "type_column",
            "election_type_codes", "voting_method_codes", "party_codes")
    return {key: doc.get(key) for key in keys} | {"date": _as_list(doc.get("date", ["%m/%d/%Y"]))}


def slot_columns(spec) -> list[tuple[int, str, str | None]]:
    """(n, method column, party column) of each slot of a slots history spec."""
    options = spec.wide
    party = options.get("party_column")
    return [(n, options["method_column"].format(n=n), party.format(n=n) if party else None)
            for n in range(1, int(options["slots"]) + 1)]


def check_slots(layout, spec) -> None:
    """The voter columns and the aux table a slots history reads exist."""
    options, known = spec.wide, set(layout.voters.columns) | set(layout.voters.optional_columns)
    aux = layout.aux.get(options["lookup"])
    columns = [c for _, method, party in slot_columns(spec) for c in (method, party) if c]
    if options.get("county_column"):
        columns.append(options["county_column"])
    wanted = {options["date_column"], options.get("type_column") or options["date_column"]}
    if aux is None or not wanted <= set(aux.columns):
        raise OptionError(f"slot history looks up unknown aux table or columns {options['lookup']!r}")
    if [c for c in columns if c not in known] or bool(aux.key_prefix) != bool(options.get("county_column")):
        raise OptionError("slot history reads unknown voter columns (or county_column without key_prefix)")


def latest_per_voter(role: str, doc: dict) -> dict:
    """[voters] latest_per_voter = { column = "snapshot_dt", date = [...] } (a file of several snapshots)."""
    option = doc.get("latest_per_voter", {})
    if option and (role != "voters" or not option.get("column") or not option.get("date")):
        raise OptionError("latest_per_voter is a [voters] table with column and date")
    return {"column": option["column"], "date": _as_list(option["date"])} if option else {}
