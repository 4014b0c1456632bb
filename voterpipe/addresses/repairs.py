"""Repairs of usaddress readings that Pub 28 reads otherwise: each takes usaddress-style labels
and returns them unchanged, or a corrected copy (the caller standardises the result)."""

from __future__ import annotations

import re

from voterpipe.addresses import pub28

_ORDINAL_NAME = re.compile(r"^\d+(ST|ND|RD|TH)$")


def box_without_number(labels: dict[str, str]) -> dict[str, str]:
    """A PO box always has a number (Pub 28 281): in ``16510 STRONG BOX`` the "box" after a house
    number is a street called STRONG BOX."""
    get = labels.get
    if get("USPSBoxType") and not get("USPSBoxID") and get("AddressNumber") and not get("StreetName"):
        return {("StreetName" if k == "USPSBoxType" else k): v for k, v in labels.items()}
    return labels


def number_name_suffix(text: str) -> dict[str, str] | None:
    """Labels for the Pub 28 delivery line shape NUMBER NAME... SUFFIX, for a line usaddress reads
    as a building or landmark name (``1317 LINDBERGH PLAZA CENTER``); None for other shapes."""
    tokens = text.split(" ")
    if len(tokens) < 3 or not tokens[0][:1].isdigit() or tokens[-1] not in pub28.STREET_SUFFIXES:
        return None
    if any(t in ("&", "AND", "#") or t in pub28.SECONDARY_UNITS for t in tokens[1:-1]):
        return None
    return {"AddressNumber": tokens[0], "StreetName": " ".join(tokens[1:-1]), "StreetNamePostType": tokens[-1]}


def repair_readings(labels: dict[str, str]) -> dict[str, str]:
    """The house-number and street repairs, each only where its shape is present (cheap checks
    first: most labels need none)."""
    get = labels.get
    if "/" in get("StreetNamePreDirectional", "") and not get("AddressNumberSuffix"):
        # The fraction of 409 1/2 2ND AVE read as a directional: it ends the house number.
        labels = {("AddressNumberSuffix" if k == "StreetNamePreDirectional" else k): v
                  for k, v in labels.items()}
    name = labels.get("StreetName", "")
    if name[1:2] == " ":
        labels = _letter_suffix_apart(labels, name)
    if "OccupancyIdentifier" in labels and "OccupancyType" not in labels:
        labels = _undesignated_id(labels)
    return labels


def _letter_suffix_apart(labels: dict[str, str], name: str) -> dict[str, str]:
    """A one-letter number suffix written apart: 1521 J S INDIANA AVE is 1521J S INDIANA AVE.
    Not N/S/E/W (123 E N ST is E + the street N) and not the U of U S (US 401 HWY)."""
    words = name.split(" ", 2)
    if (len(words) == 3 and words[0].upper() not in "NSEW"
            and pub28.clean_text(words[1]) in pub28.DIRECTIONALS
            and pub28.clean_text(" ".join(words[:2])) != "U S"
            and not labels.get("AddressNumberSuffix") and not labels.get("StreetNamePreDirectional")):
        return {**labels, "AddressNumberSuffix": words[0], "StreetNamePreDirectional": words[1],
                "StreetName": words[2]}
    return labels


def _undesignated_id(labels: dict[str, str]) -> dict[str, str]:
    """usaddress reads part of the street as a unit without designator; put it back:
    - Pub 28 237 highways: ``7355 AL HIGHWAY 157`` (type HIGHWAY, unit 157) -> name AL HIGHWAY 157,
      when the words before HIGHWAY only say whose highway it is (``DIXIE HWY 3`` keeps unit 3);
    - Pub 28 235 numeric streets: ``1600 NE 4TH`` (only a directional, unit 4TH) -> NE + 4TH;
    - ``13TH AVE NO``: NO after the suffix is North (pub28.DIRECTION_ABBREVIATIONS), not a unit."""
    ident = labels["OccupancyIdentifier"]
    if "SubaddressType" in labels or "SubaddressIdentifier" in labels:
        return labels
    stype = pub28.standardize_suffix(labels.get("StreetNamePostType", ""))
    qualifiers = pub28.clean_text(labels.get("StreetName", "")).split()
    if (stype in pub28.ROUTE_TYPES and ident.isdigit() and "StreetNamePostDirectional" not in labels
            and all(word in pub28.HIGHWAY_QUALIFIERS for word in qualifiers)):
        fixed = {k: v for k, v in labels.items() if k not in ("StreetNamePostType", "OccupancyIdentifier")}
        fixed["StreetName"] = " ".join(filter(None, (labels.get("StreetName", ""),
                                                     labels["StreetNamePostType"], ident)))
        return fixed
    street = [k for k in labels if k.startswith("StreetName")]
    lone_dir = labels[street[0]] if len(street) == 1 else ""
    if (_ORDINAL_NAME.match(ident.upper()) and street[:1] != ["StreetNamePreType"]
            and pub28.clean_text(lone_dir) in pub28.DIRECTIONALS):
        fixed = {k: v for k, v in labels.items() if k not in ("OccupancyIdentifier", street[0])}
        fixed["StreetNamePreDirectional"] = lone_dir
        fixed["StreetName"] = ident
        return fixed
    if (ident.upper() in pub28.DIRECTION_ABBREVIATIONS and "StreetNamePostType" in labels
            and "StreetNamePostDirectional" not in labels):
        fixed = {k: v for k, v in labels.items() if k != "OccupancyIdentifier"}
        fixed["StreetNamePostDirectional"] = ident
        return fixed
    return labels
