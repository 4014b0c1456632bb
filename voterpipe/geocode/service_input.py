"""Addresses as the Census-compatible service receives them (a batch row, a street/city/state/zip
query, one free-text line) split into the TIGER engine's input parts by the pipeline's own address
normaliser, so the service and the pipeline see an address the same way."""

from __future__ import annotations

import re

from voterpipe.addresses.parse import normalise_line

ENGINE_COLUMNS = ["address_key", "house_number", "pre_dir", "street_name", "street_type",
                  "post_dir", "zip5", "city", "state"]

_STATE_ZIP = re.compile(r"^\s*([A-Za-z]{2})?\s*(\d{5})?(?:-\d{4})?\s*$")


def split_street(street: str) -> dict:
    """Engine parts of a street line, standardised by the pipeline's own address normaliser so
    the service and the pipeline see an address the same way."""
    number, pre, name, stype, post, *_ = normalise_line(street or "")
    return {"house_number": number, "pre_dir": pre, "street_name": name, "street_type": stype,
            "post_dir": post}


def split_address(street: str, city: str = "", state: str = "", zip_code: str = "") -> dict:
    """Engine input parts for a batch row or an address/... query; '' where a part is absent."""
    return {**split_street(street), "city": (city or "").strip().upper(),
            "state": (state or "").strip().upper(), "zip5": (zip_code or "").strip()[:5]}


def split_one_line(address: str) -> dict:
    """Parts of 'STREET, CITY, ST ZIP' (the comma layout the Census examples use).

    Without commas, a trailing 'ST 12345' is still split off; the rest is taken as the street.
    """
    pieces = [p.strip() for p in (address or "").split(",")]
    state, zip_code = "", ""
    match = _STATE_ZIP.match(pieces[-1]) if len(pieces) > 1 else None
    if match and (match.group(1) or match.group(2)):
        state, zip_code = match.group(1) or "", match.group(2) or ""
        pieces = pieces[:-1]
    elif len(pieces) == 1:
        tail = re.search(r"\s([A-Za-z]{2})\s+(\d{5})(?:-\d{4})?\s*$", pieces[0])
        if tail:
            state, zip_code = tail.group(1), tail.group(2)
            pieces = [pieces[0][: tail.start()]]
    city = pieces[1] if len(pieces) > 1 else ""
    if len(pieces) > 2 and not state:
        state = pieces[2]
    return split_address(pieces[0], city, state, zip_code)
