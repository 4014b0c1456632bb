"""Each state's synthetic counties and their street networks, and the dwellings voters live in."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from voterpipe.synth.county import CountyNetwork, CountySpec, build_county, expand_dwellings
from voterpipe.synth.states import profile_for

# Voters per dwelling is about 2.3 (household sizes); 20-30 % of dwellings stay vacant so movers
# and new registrants of later snapshots find homes. A building holds about 2 dwellings on average.
DWELLINGS_PER_BUILDING = 1.5
MULTI_UNIT_SHARE = 0.04  # buildings with 4-24 units: about a third of dwellings are apartments
VACANCY_FACTOR = 1.35
MEAN_HOUSEHOLD = 2.3
MIN_BUILDINGS_PER_COUNTY = 80


# USPS ZIP prefixes of the states whose ZIPs begin with 0. A drop delivered for one of them whose
# people live in another state's counties ([synth] people) moves its ZIPs into this prefix, so its
# files carry 0-leading ZIPs as the state's own do (Concord NH 03301, Portland ME 04103).
LEADING_ZERO_ZIP_PREFIXES = {"ct": "06", "ma": "01", "me": "04", "nh": "03", "nj": "07", "ri": "02", "vt": "05"}


def counties_for(state: str, zip_state: str | None = None) -> list[CountySpec]:
    """The state's synthetic counties: real state FIPS and county codes, distinct ZIPs and origins.
    `zip_state`: the state the drop is delivered for, when its ZIPs begin with 0 (see above)."""
    counties = list(profile_for(state).counties)
    prefix = LEADING_ZERO_ZIP_PREFIXES.get((zip_state or state).lower())
    if prefix is None:
        return counties
    return [replace(c, zip_base=int(prefix) * 1000 + c.zip_base % 1000) for c in counties]


def buildings_per_county_for(state: str, voters: int) -> int:
    n_counties = len(counties_for(state))
    needed = voters / MEAN_HOUSEHOLD * VACANCY_FACTOR / DWELLINGS_PER_BUILDING / n_counties
    return max(MIN_BUILDINGS_PER_COUNTY, math.ceil(needed))


def id_bases(state_fips: str, county_index: int) -> tuple[int, int]:
    """(tlid_base, tfid_base): disjoint id ranges per state and county (2 M ids each)."""
    slot = int(state_fips) * 10_000_000 + county_index * 2_000_000
    return 100_000_000 + slot, 1_000_000_000 + slot


def county_seed(seed: int, state_fips: str, county_index: int) -> int:
    return int(np.random.SeedSequence([seed, int(state_fips), county_index, 7]).generate_state(1)[0])


def networks_for(state: str, seed: int, buildings_per_county: int, zip_state: str | None = None) -> list[CountyNetwork]:
    """The street networks of the state's counties (ZIPs of `zip_state`, see counties_for); the
    same arguments give the same networks."""
    networks = []
    for index, spec in enumerate(counties_for(state, zip_state)):
        tlid_base, tfid_base = id_bases(spec.state_fips, index)
        networks.append(build_county(spec, buildings_per_county, county_seed(seed, spec.state_fips, index),
                                     tlid_base=tlid_base, tfid_base=tfid_base, multi_unit_share=MULTI_UNIT_SHARE))
    return networks


def dwellings_for(networks: list[CountyNetwork]) -> pd.DataFrame:
    """One row per dwelling of every county, with its census geography and a stable dwelling_id."""
    frames = []
    for index, network in enumerate(networks):
        buildings = network.buildings.assign(building_number=np.arange(len(network.buildings), dtype=np.int64))
        dwellings = expand_dwellings(buildings)
        faces = network.faces
        at = pd.Index(faces["TFID"]).get_indexer(dwellings["tfid"].to_numpy())
        for column in ("TRACTCE", "BLKGRPCE", "BLOCKCE", "CD119FP", "SLDUST", "SLDLST"):
            dwellings[column.lower()] = faces[column].to_numpy()[at]
        dwellings["county_index"] = np.int8(index)
        dwellings["state_fips"] = faces["STATEFP"].iloc[0]
        frames.append(dwellings)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "dwelling_id", np.arange(len(out), dtype=np.int64))
    # A precinct per tract cell and block group, unique within the county.
    tract4 = pd.Series(out["tractce"].to_numpy(dtype=object)).str[:4].astype(np.int64).to_numpy()
    out["precinct"] = (tract4 - 100) * 4 + out["blkgrpce"].astype(np.int64).to_numpy()
    # A ZIP+4 add-on per building, stable because building numbers are.
    add_on = (out["building_number"].to_numpy() * 37 + out["tlid"].to_numpy() % 97) % 9998 + 1
    out["zip4"] = pd.Series(add_on).astype(str).str.zfill(4).to_numpy()
    return out
