"""Synthetic residential address strings for tests and benchmarks, formatted like NC's one-line
`res_street_address` and varied the ways real voter files vary (case, spelled-out words, units).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from voterpipe.synth.county import CountySpec, build_county, expand_dwellings

SAMPLE_SPEC = CountySpec(state_fips="37", county_fips="183", county_code="92", county_name="WAKE",
                         zip_base=27600, cities=("RALEIGH", "CARY"), origin=(-78.7, 35.7))

_SPELLED_SUFFIX = {"ST": "STREET", "AVE": "AVENUE", "RD": "ROAD", "DR": "DRIVE", "LN": "LANE",
                   "CT": "COURT", "BLVD": "BOULEVARD", "WAY": "WAY", "PL": "PLACE", "CIR": "CIRCLE",
                   "TRL": "TRAIL", "PKWY": "PARKWAY", "HWY": "HIGHWAY"}
_SPELLED_DIR = {"N": "NORTH", "S": "SOUTH", "E": "EAST", "W": "WEST"}
_ORDINAL_WORDS = {"1ST": "FIRST", "2ND": "SECOND", "3RD": "THIRD", "4TH": "FOURTH", "5TH": "FIFTH",
                  "6TH": "SIXTH", "7TH": "SEVENTH", "8TH": "EIGHTH", "9TH": "NINTH", "10TH": "TENTH"}
_UNIT_WORDS = ("APT", "UNIT", "STE", "APARTMENT", "LOT", "#")


def county_dwellings(buildings: int, seed: int = 7) -> pd.DataFrame:
    """One row per dwelling of a synthetic county (house_number, pre_dir, street_name,
    street_type, post_dir, unit, zip5, city)."""
    network = build_county(SAMPLE_SPEC, buildings=buildings, seed=seed)
    return expand_dwellings(network.buildings)


def nc_line(number: str, pre: str, name: str, stype: str, post: str, unit: str) -> str:
    """NC's layout: two spaces after the number, the unit after three spaces with '#'."""
    street = " ".join(p for p in (pre, name, stype, post) if p)
    line = f"{number}  {street}"
    return f"{line}   #{unit}" if unit else line


def address_variants(dwellings: pd.DataFrame, n: int | None, seed: int = 11,
                     variant_share: float = 0.5) -> list[str]:
    """`n` address strings drawn from `dwellings` (n=None: one per dwelling, in order); about
    `variant_share` of them are rewritten in one of the irregular ways real files contain."""
    rng = np.random.default_rng(seed)
    if n is None:
        rows, n = dwellings, len(dwellings)
    else:
        rows = dwellings.iloc[rng.integers(0, len(dwellings), n)]
    kinds = rng.integers(0, 20, n)
    vary = rng.random(n) < variant_share
    out = []
    for (number, pre, name, stype, post, unit), kind, v in zip(
            rows[["house_number", "pre_dir", "street_name", "street_type", "post_dir", "unit"]].itertuples(
                index=False, name=None), kinds, vary):
        if not v:
            out.append(nc_line(number, pre, name, stype, post, unit))
            continue
        if kind == 0:
            out.append(nc_line(number, pre, name, stype, post, unit).lower())
        elif kind == 1:
            out.append(nc_line(number, _SPELLED_DIR.get(pre, pre), name, _SPELLED_SUFFIX.get(stype, stype),
                               post, unit).title())
        elif kind == 2:
            out.append(" ".join(p for p in (number, pre, name, stype, post) if p)
                       + (f" {_UNIT_WORDS[len(name) % len(_UNIT_WORDS)]} {unit}" if unit else ""))
        elif kind == 3:
            out.append(nc_line("0" + number, pre, _ORDINAL_WORDS.get(name, name), stype, post, unit))
        elif kind == 4:
            out.append(nc_line(f"{number} 1/2", pre, name, stype, post, unit))
        elif kind == 5:
            out.append(f"PO BOX {int(number) % 997 + 1}")
        elif kind == 6:
            out.append(f"RR {int(number) % 9 + 1} BOX {int(number) % 300 + 1}")
        elif kind == 7:
            out.append(["REMOVED", "", "   ", "CONFIDENTIAL"][int(number) % 4])
        elif kind == 8:
            out.append(nc_line(number, pre + "." if pre else "", name, stype + "." if stype else "", post, unit))
        elif kind == 9:
            out.append(nc_line(number, pre, name, stype, post, unit or str(int(number) % 12 + 1)))
        elif kind == 10:
            out.append(f"{number} HWY {int(number) % 90 + 10}")
        elif kind == 11:
            out.append(f"{number} {['N', 'S', 'E', 'W'][int(number) % 4]} ST")
        elif kind == 12:
            out.append(nc_line(f"{number}{'ABC'[int(number) % 3]}", pre, name, stype, post, unit))
        elif kind == 13:
            out.append(" ".join(p for p in (number, pre, name, stype, post) if p) + " APT #" + (unit or "2"))
        elif kind == 14:
            out.append(" ".join(p for p in (pre, name, stype) if p) + " & MAIN ST")
        elif kind == 15:
            out.append(f"{number}  {name} #{stype}")
        elif kind == 16:
            out.append(" ".join(p for p in (number, pre, name, stype, post, "N") if p))
        elif kind == 17:
            out.append(" ".join(p for p in (number, name, stype, "BLDG", "2", "APT", unit or "1") if p))
        elif kind == 18:
            out.append(" ".join(p for p in (number, _SPELLED_DIR.get(pre, "NORTH"), name, stype) if p))
        else:
            out.append(nc_line(number, pre, name.title(), stype.lower(), post, unit))
    return out
