"""Census geographies: layers of a Census JSON answer as GEOCODES columns, and the districts
(CD/SLDU/SLDL) of a block from imported TIGER faces or from rows that already carry them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from voterpipe import storage

DISTRICT_COLUMNS = ("congressional_district", "state_senate_district", "state_house_district")


def block_geoid(frame: pd.DataFrame) -> pd.Series:
    """The 15-digit block GEOID of each row (state, county, tract, block)."""
    return (frame["state_fips"].fillna("") + frame["county_fips"].fillna("")
            + frame["tract"].fillna("") + frame["block"].fillna(""))


def tiger_block_districts(directory: Path | None = None) -> dict[str, tuple]:
    """block GEOID -> DISTRICT_COLUMNS values from every imported TIGER county's faces table
    (storage.cache_dir('tiger') by default); {} when nothing is imported."""
    from voterpipe.geocode.tiger_import import FACES_FILE

    directory = Path(directory) if directory is not None else storage.data_root() / "cache" / "tiger"
    files = sorted(directory.glob(f"*/{FACES_FILE}")) if directory.is_dir() else []
    out: dict[str, tuple] = {}
    for path in files:
        if not storage.is_published(path.parent):
            continue
        faces = storage.read_parquet(path).to_pandas()
        values = faces[list(DISTRICT_COLUMNS)].astype(object).where(faces[list(DISTRICT_COLUMNS)] != "", None)
        out.update(zip(block_geoid(faces), values.itertuples(index=False, name=None)))
    return out


def known_block_districts(geocodes: pd.DataFrame) -> dict[str, tuple]:
    """block GEOID -> districts from rows that already have them (cached rows)."""
    have = geocodes[geocodes["block"].notna() & geocodes["congressional_district"].notna()]
    geoid = have["state_fips"] + have["county_fips"] + have["tract"] + have["block"]
    values = have[list(DISTRICT_COLUMNS)].astype(object).where(have[list(DISTRICT_COLUMNS)].notna(), None)
    return dict(zip(geoid, values.itertuples(index=False, name=None)))


def _layer(geographies: dict, suffix: str) -> dict | None:
    """The first usable record of the layer whose name ends with `suffix` (names embed years)."""
    for name, records in geographies.items():
        if name.endswith(suffix) and isinstance(records, list):
            for record in records:
                if isinstance(record, dict) and "status" not in record:
                    return record
    return None


def geographies_to_columns(geographies: dict) -> dict:
    """GEOCODES geography columns from a Census JSON `geographies` object (layers by suffix)."""
    out: dict[str, Any] = {}
    block = _layer(geographies, "Census Blocks")
    tract = _layer(geographies, "Census Tracts")
    county = _layer(geographies, "Counties")
    state = _layer(geographies, "States")
    source = block or tract or county or state or {}
    out["state_fips"] = source.get("STATE")
    out["county_fips"] = (block or tract or county or {}).get("COUNTY")
    out["tract"] = (block or tract or {}).get("TRACT")
    if block:
        out["block"] = block.get("BLOCK")
        out["block_group"] = block.get("BLKGRP") or (out["block"] or "")[:1] or None
    cd = _layer(geographies, "Congressional Districts")
    if cd:
        out["congressional_district"] = next(
            (v for k, v in cd.items() if k.startswith("CD") and k[2:].isdigit()), cd.get("BASENAME"))
    upper = _layer(geographies, "State Legislative Districts - Upper")
    if upper:
        out["state_senate_district"] = upper.get("SLDU") or upper.get("BASENAME")
    lower = _layer(geographies, "State Legislative Districts - Lower")
    if lower:
        out["state_house_district"] = lower.get("SLDL") or lower.get("BASENAME")
    return out
