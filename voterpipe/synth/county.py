"""A synthetic county: a street grid with TIGER-style address ranges, faces and buildings.

The grid is the single source of truth for synthetic geography. Voters are housed in its
buildings, and the TIGER writer turns its edges and faces into ADDRFEAT/EDGES/FACES files, so
a synthetic address geocodes back to the edge, side and block it was generated on.

Conventions, as in TIGER: an edge runs from (x0, y0) to (x1, y1); left and right are relative to
that direction; each side's range runs from its `*_from` number (at the start vertex) to its
`*_to` number (at the end vertex); odd numbers on one side, even on the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

CELL_DEGREES = 0.0015  # one block is about 150 m
SIDE_OFFSET_DEGREES = 0.0001  # houses stand about 10 m off the centre line
HOUSES_PER_SIDE = 12
BLOCKS_PER_TRACT = 4

EAST_WEST_NAMES = [
    "MAIN", "OAK", "ELM", "PINE", "MAPLE", "CEDAR", "WALNUT", "CHESTNUT", "HICKORY", "WILLOW",
    "DOGWOOD", "MAGNOLIA", "POPLAR", "SYCAMORE", "BIRCH", "ASH", "LAUREL", "HOLLY", "CHERRY",
    "SPRUCE", "CYPRESS", "LOCUST", "MULBERRY", "PECAN", "HAWTHORN", "JUNIPER", "ASPEN", "ALDER",
    "BEECH", "LINDEN", "CHURCH", "MILL", "SPRING", "LAKE", "HILL", "RIVER", "PARK", "FOREST",
    "MEADOW", "RIDGE", "VALLEY", "SUNSET", "HIGHLAND", "LINCOLN", "WASHINGTON", "JEFFERSON",
    "MADISON", "JACKSON", "FRANKLIN", "MONROE", "ADAMS", "HAMILTON", "FAYETTE", "UNION",
    "LIBERTY", "COLLEGE", "MARKET", "WATER", "BRIDGE", "BROAD", "CENTER", "GROVE", "ORCHARD",
    "FAIRVIEW", "PLEASANT", "PROSPECT", "ACADEMY", "VINE", "HARMONY", "TRINITY", "WINSTON",
    "KINGS", "QUEENS", "CAMBRIDGE", "OXFORD", "DEVON", "STRATFORD", "BRIGHTON", "WESTOVER",
]
EAST_WEST_TYPES = ["ST", "AVE", "RD", "DR", "LN", "CT", "BLVD", "WAY", "PL", "CIR", "TRL", "PKWY"]
# Streets whose names trip parsers: kept so the normaliser and geocoder meet them.
SPECIAL_NORTH_SOUTH = [
    ("", "HIGHWAY 54", "", ""),
    ("", "N", "ST", ""),
    ("", "MARTIN LUTHER KING JR", "BLVD", ""),
    ("", "OLD US 1", "HWY", ""),
]


@dataclass(frozen=True)
class CountySpec:
    state_fips: str  # "37"
    county_fips: str  # "183"
    county_code: str  # the state's own county code in its voter file
    county_name: str
    zip_base: int  # first of four ZIP codes
    cities: tuple[str, str]
    origin: tuple[float, float]  # lon, lat of the grid's south-west corner


@dataclass
class CountyNetwork:
    """edges: one row per street edge; faces: one row per face; buildings: one row per house."""

    edges: pd.DataFrame
    faces: pd.DataFrame
    buildings: pd.DataFrame


def _ordinal(n: int) -> str:
    suffix = "TH" if 10 <= n % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(n % 10, "TH")
    return f"{n}{suffix}"


def grid_size_for(buildings: int) -> int:
    """Blocks per side of a square grid that holds about `buildings` houses."""
    per_block = 4 * HOUSES_PER_SIDE  # two street sides per cell, two edges per cell, two sides each
    return max(3, math.ceil(math.sqrt(max(buildings, 1) / per_block)))


def _street_names(grid: int) -> tuple[list[tuple], list[tuple]]:
    """Name every east-west (row) and north-south (column) street of a grid: (pre, name, type, post)."""
    rows = []
    for j in range(grid + 1):
        name = EAST_WEST_NAMES[j % len(EAST_WEST_NAMES)]
        if j >= len(EAST_WEST_NAMES):
            name = f"{name} {['HOLLOW', 'CREEK', 'GLEN', 'BROOK'][(j // len(EAST_WEST_NAMES) - 1) % 4]}"
        rows.append(("", name, EAST_WEST_TYPES[j % len(EAST_WEST_TYPES)], ""))
    columns = []
    for i in range(grid + 1):
        if i % 9 == 4 and (i // 9) < len(SPECIAL_NORTH_SOUTH):
            columns.append(SPECIAL_NORTH_SOUTH[i // 9])
        else:
            columns.append(("", _ordinal(i + 1), "ST" if i % 2 == 0 else "AVE", ""))
    return rows, columns


def _face_geography(spec: CountySpec, i: np.ndarray, j: np.ndarray, grid: int) -> dict:
    """Census codes for cell (i, j); cells outside the grid take their nearest inside cell's codes."""
    ci = np.clip(i, 0, grid - 1)
    cj = np.clip(j, 0, grid - 1)
    ti, tj = ci // BLOCKS_PER_TRACT, cj // BLOCKS_PER_TRACT
    tract = np.char.add(np.char.zfill((100 + ti * 40 + tj).astype(str), 4), "00")
    bg = 1 + ((ci % BLOCKS_PER_TRACT) // 2) * 2 + ((cj % BLOCKS_PER_TRACT) // 2)
    block_in_bg = 1 + (ci % 2) * 2 + (cj % 2)
    block = np.char.add(bg.astype(str), np.char.zfill(block_in_bg.astype(str), 3))
    half = (ci >= grid / 2).astype(int)
    third = np.minimum(ci * 3 // grid, 2)
    cd = np.char.zfill((1 + half + 2 * (int(spec.county_fips) % 3)).astype(str), 2)
    sldu = np.char.zfill((1 + third + 3 * (int(spec.county_fips) % 5)).astype(str), 3)
    sldl = np.char.zfill((1 + third * 2 + (cj >= grid / 2) + 6 * (int(spec.county_fips) % 7)).astype(str), 3)
    zone = (ci >= grid / 2).astype(int) * 2 + (cj >= grid / 2).astype(int)
    return {
        "STATEFP": np.full(len(ci), spec.state_fips), "COUNTYFP": np.full(len(ci), spec.county_fips),
        "TRACTCE": tract, "BLKGRPCE": bg.astype(str), "BLOCKCE": block,
        "CD119FP": cd, "SLDUST": sldu, "SLDLST": sldl,
        "zip5": np.char.zfill((spec.zip_base + zone).astype(str), 5), "zone": zone,
    }


def build_county(spec: CountySpec, buildings: int, seed: int, tlid_base: int = 600_000_000,
                 tfid_base: int = 200_000_000, multi_unit_share: float = 0.08) -> CountyNetwork:
    """A square street grid with enough houses for about `buildings` buildings."""
    rng = np.random.default_rng(seed)
    grid = grid_size_for(buildings)
    lon0, lat0 = spec.origin

    # Faces: cells (i, j) for i, j in [-1, grid], so border edges have an outside face too.
    span = np.arange(-1, grid + 1)
    fi, fj = [a.ravel() for a in np.meshgrid(span, span, indexing="ij")]
    tfid = tfid_base + (fi + 1) * (grid + 2) + (fj + 1)
    geo = _face_geography(spec, fi, fj, grid)
    faces = pd.DataFrame({"TFID": tfid, **{k: v for k, v in geo.items() if k not in ("zone",)}})
    faces["city"] = np.where(geo["zone"] < 2, spec.cities[0], spec.cities[1])

    def face_id(i, j):
        return tfid_base + (np.asarray(i) + 1) * (grid + 2) + (np.asarray(j) + 1)

    rows, columns = _street_names(grid)
    records = []
    k = np.arange(grid)
    for j, (pre, name, stype, post) in enumerate(rows):  # east-west streets, block i spans x in [i, i+1]
        north, south = face_id(k, j), face_id(k, j - 1)
        pre_dirs = np.where(k < grid // 2, "W", "E") if j % 3 == 0 else np.full(grid, pre)
        records.append(pd.DataFrame({
            "x0": k, "y0": j, "x1": k + 1, "y1": j, "face_left": north, "face_right": south,
            "pre_dir": pre_dirs, "street_name": name, "street_type": stype, "post_dir": post,
            "block_index": k, "axis": "ew"}))
    for i, (pre, name, stype, post) in enumerate(columns):  # north-south streets, block j spans y
        west, east = face_id(i - 1, k), face_id(i, k)
        records.append(pd.DataFrame({
            "x0": i, "y0": k, "x1": i, "y1": k + 1, "face_left": west, "face_right": east,
            "pre_dir": pre, "street_name": name, "street_type": stype, "post_dir": post,
            "block_index": k, "axis": "ns"}))
    edges = pd.concat(records, ignore_index=True)
    n_edges = len(edges)
    edges.insert(0, "TLID", tlid_base + np.arange(n_edges, dtype=np.int64))

    # Ranges: block b carries 100*(b+1) .. 100*(b+1)+99; odd numbers on the left as digitised.
    base = 100 * (edges["block_index"].to_numpy() + 1)
    edges["LFROMHN"], edges["LTOHN"] = base + 1, base + 99
    edges["RFROMHN"], edges["RTOHN"] = base, base + 98
    # About one edge in ten is digitised the other way, as in real TIGER data.
    flip = rng.random(n_edges) < 0.1
    e = edges
    e.loc[flip, ["x0", "y0", "x1", "y1"]] = e.loc[flip, ["x1", "y1", "x0", "y0"]].to_numpy()
    e.loc[flip, ["face_left", "face_right"]] = e.loc[flip, ["face_right", "face_left"]].to_numpy()
    # After flipping, the even side is on the left and ranges run from high to low.
    lf, lt = e.loc[flip, "RTOHN"].to_numpy(), e.loc[flip, "RFROMHN"].to_numpy()
    rf, rt = e.loc[flip, "LTOHN"].to_numpy(), e.loc[flip, "LFROMHN"].to_numpy()
    e.loc[flip, "LFROMHN"], e.loc[flip, "LTOHN"], e.loc[flip, "RFROMHN"], e.loc[flip, "RTOHN"] = lf, lt, rf, rt
    e["PARITYL"] = np.where(flip, "E", "O")
    e["PARITYR"] = np.where(flip, "O", "E")
    face_zip = dict(zip(faces["TFID"], faces["zip5"]))
    face_city = dict(zip(faces["TFID"], faces["city"]))
    e["ZIPL"] = e["face_left"].map(face_zip)
    e["ZIPR"] = e["face_right"].map(face_zip)
    for c in ("x0", "x1"):
        e[c] = lon0 + e[c].astype(float) * CELL_DEGREES
    for c in ("y0", "y1"):
        e[c] = lat0 + e[c].astype(float) * CELL_DEGREES
    e["FULLNAME"] = (e["pre_dir"] + " " + e["street_name"] + " " + e["street_type"] + " " + e["post_dir"]
                     ).str.split().str.join(" ")
    e["STATEFP"], e["COUNTYFP"] = spec.state_fips, spec.county_fips
    e = e.rename(columns={"face_left": "TFIDL", "face_right": "TFIDR"}).drop(columns=["block_index"])

    # Buildings: HOUSES_PER_SIDE per side, numbers spread across the block.
    slot = np.arange(HOUSES_PER_SIDE)
    side_frames = []
    for side in ("L", "R"):
        frm = e[f"{side}FROMHN"].to_numpy()
        to = e[f"{side}TOHN"].to_numpy()
        lo = np.minimum(frm, to)
        numbers = lo[:, None] + 8 * slot[None, :]  # keeps parity
        frac = (numbers - frm[:, None]) / (to - frm)[:, None]
        dx = (e["x1"] - e["x0"]).to_numpy()[:, None]
        dy = (e["y1"] - e["y0"]).to_numpy()[:, None]
        length = np.hypot(dx, dy)
        sign = 1.0 if side == "L" else -1.0  # left of the direction of travel is +90 degrees
        lon = e["x0"].to_numpy()[:, None] + frac * dx - sign * dy / length * SIDE_OFFSET_DEGREES
        lat = e["y0"].to_numpy()[:, None] + frac * dy + sign * dx / length * SIDE_OFFSET_DEGREES
        faces_side = e[f"TFID{side}"].to_numpy()
        side_frames.append(pd.DataFrame({
            "tlid": np.repeat(e["TLID"].to_numpy(), HOUSES_PER_SIDE),
            "side": side,
            "tfid": np.repeat(faces_side, HOUSES_PER_SIDE),
            "house_number": numbers.ravel().astype(str),
            "pre_dir": np.repeat(e["pre_dir"].to_numpy(), HOUSES_PER_SIDE),
            "street_name": np.repeat(e["street_name"].to_numpy(), HOUSES_PER_SIDE),
            "street_type": np.repeat(e["street_type"].to_numpy(), HOUSES_PER_SIDE),
            "post_dir": np.repeat(e["post_dir"].to_numpy(), HOUSES_PER_SIDE),
            "lon": lon.ravel(), "lat": lat.ravel(),
        }))
    b = pd.concat(side_frames, ignore_index=True)
    b["zip5"] = b["tfid"].map(face_zip)
    b["city"] = b["tfid"].map(face_city)
    b["county_fips"] = spec.county_fips
    b["county_code"] = spec.county_code
    b["county_name"] = spec.county_name
    # Keep a random subset of the grid's slots so houses are not perfectly regular.
    keep = rng.permutation(len(b))[: min(len(b), buildings)]
    b = b.iloc[np.sort(keep)].reset_index(drop=True)
    multi = rng.random(len(b)) < multi_unit_share
    b["units"] = np.where(multi, rng.integers(4, 25, len(b)), 0).astype(np.int16)
    b.insert(0, "building_id", spec.state_fips + spec.county_fips + "-" + pd.Series(np.arange(len(b))).astype(str))
    return CountyNetwork(edges=e.reset_index(drop=True), faces=faces, buildings=b)


def unit_labels(units: int, style: int) -> list[str]:
    """Apartment labels for a building with `units` units: '1A', '1B', ... or '101', '102', ..."""
    if style % 2 == 0:
        return [f"{1 + n // 4}{'ABCD'[n % 4]}" for n in range(units)]
    return [f"{100 * (1 + n // 6) + 1 + n % 6}" for n in range(units)]


def expand_dwellings(buildings: pd.DataFrame) -> pd.DataFrame:
    """One row per dwelling: single houses as they are, multi-unit buildings once per unit."""
    single = buildings[buildings["units"] == 0].assign(unit="")
    multi = buildings[buildings["units"] > 0]
    labels = [unit_labels(int(n), int(idx)) for idx, n in zip(multi.index, multi["units"])]
    repeated = multi.loc[multi.index.repeat(multi["units"].to_numpy())].copy()
    repeated["unit"] = [label for group in labels for label in group]
    return pd.concat([single, repeated]).sort_index(kind="stable").reset_index(drop=True)
