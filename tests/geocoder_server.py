"""Test helpers for the Census backend and the geocoder service: a TIGER engine built from a small
synthetic county (with one duplicated edge, so one address is a genuine Tie) and ADDRESSES rows."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from voterpipe import schema
from voterpipe.geocode.tiger import TigerGeocoder, import_tiger_dir
from voterpipe.synth.county import CountyNetwork, CountySpec, build_county
from voterpipe.synth.tiger_files import write_tiger_files

SPEC = CountySpec("37", "183", "92", "WAKE", 27601, ("RALEIGH", "CARY"), (-78.70, 35.70))
TIE_TLID = 790_000_001
ADDRESS_COLUMNS = [f.name for f in schema.ADDRESSES]


@dataclass
class SyntheticGeocoder:
    engine: TigerGeocoder
    network: CountyNetwork
    tie_edge: pd.Series  # an edge whose twin (same name, range, ZIP) makes its addresses Ties
    tiger_dir: Path  # the imported TIGER data (cache/tiger)


@lru_cache(maxsize=1)
def synthetic_geocoder(buildings: int = 1200, seed: int = 5) -> SyntheticGeocoder:
    """build_county -> write_tiger_files -> import_tiger_dir -> TigerGeocoder, once per process."""
    base = Path(tempfile.mkdtemp(prefix="voterpipe-geocoder-test-"))
    atexit.register(shutil.rmtree, base, True)
    network = build_county(SPEC, buildings, seed=seed)
    edges = network.edges
    tie_edge = edges[(edges["PARITYL"] == "O") & (edges["street_name"] == "OAK")].iloc[0]
    twin = tie_edge.copy()
    twin["TLID"] = TIE_TLID
    twin[["x0", "x1"]] = tie_edge[["x0", "x1"]] + 0.10
    with_twin = CountyNetwork(edges=pd.concat([edges, pd.DataFrame([twin])], ignore_index=True),
                              faces=network.faces, buildings=network.buildings)
    write_tiger_files(with_twin, base / "files")
    import_tiger_dir(base / "files", root=base / "data")
    engine = TigerGeocoder.load(base / "data" / "cache" / "tiger")
    return SyntheticGeocoder(engine, network, tie_edge, base / "data" / "cache" / "tiger")


def addresses_frame(geo: SyntheticGeocoder, houses: int = 150, seed: int = 1) -> pd.DataFrame:
    """ADDRESSES rows: `houses` real houses (every fifth with two extra units, which share one
    request), one Tie, two streets that do not exist, one PO box that is never sent."""
    rng = np.random.default_rng(seed)
    buildings = geo.network.buildings
    # Houses on the tie edge would be Ties too; keep them out so the expectations stay simple.
    buildings = buildings[buildings["tlid"] != geo.tie_edge["TLID"]]
    picked = buildings.iloc[np.sort(rng.choice(len(buildings), houses, replace=False))]
    rows = []
    for n, house in enumerate(picked.itertuples()):
        units = ["", "1A", "2B"] if n % 5 == 0 else [""]
        for unit in units:
            rows.append({"house_number": house.house_number, "pre_dir": house.pre_dir,
                         "street_name": house.street_name, "street_type": house.street_type,
                         "post_dir": house.post_dir, "unit_type": "APT" if unit else "",
                         "unit_number": unit, "city": house.city, "state": "NC",
                         "zip5": house.zip5, "parse_status": "ok", "expect_tlid": house.tlid,
                         "expect_side": house.side})
    tie = geo.tie_edge
    rows.append({"house_number": str(tie["LFROMHN"]), "pre_dir": tie["pre_dir"],
                 "street_name": tie["street_name"], "street_type": tie["street_type"],
                 "post_dir": tie["post_dir"], "city": "RALEIGH", "state": "NC", "zip5": tie["ZIPL"],
                 "parse_status": "ok"})
    for number in ("999", "4321"):
        rows.append({"house_number": number, "street_name": "NOWHERE", "street_type": "RD",
                     "city": "RALEIGH", "state": "NC", "zip5": "27601", "parse_status": "ok"})
    rows.append({"house_number": "77", "street_name": "PO BOX", "city": "RALEIGH", "state": "NC",
                 "zip5": "27601", "parse_status": "po_box"})
    frame = pd.DataFrame(rows)
    for column in ADDRESS_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    text = ["house_number", "pre_dir", "street_name", "street_type", "post_dir", "unit_type",
            "unit_number", "city", "state", "zip5"]
    frame[text] = frame[text].fillna("")
    frame["address_key"] = [f"key{i:04d}" for i in range(len(frame))]
    frame["building_key"] = frame["address_key"]
    frame["voter_count"] = 1
    return frame


def expected_geocodes(geo: SyntheticGeocoder, addresses: pd.DataFrame) -> pd.DataFrame:
    """The engine's own answer for each address, indexed by address_key ('not_sent' for PO boxes)."""
    direct = geo.engine.geocode(addresses[["address_key", "house_number", "pre_dir", "street_name",
                                           "street_type", "post_dir", "zip5", "city", "state"]])
    direct = direct.set_index("address_key")
    direct.loc[addresses.loc[addresses["parse_status"] == "po_box", "address_key"], "status"] = "not_sent"
    return direct
