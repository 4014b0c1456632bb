"""The censusgeocode client pointed at [geocoder] census_url, and single-address (JSON) lookups.

censusgeocode 0.5.3 builds every URL, carries benchmark/vintage, names the batch columns
(`batchfields`) and answers single-address JSON calls (`onelineaddress`), where its parsing is
sound; the batch POST is ours (census_sender.py).
"""

from __future__ import annotations

from typing import Any

import censusgeocode

from voterpipe import schema
from voterpipe.geocode.census_geographies import geographies_to_columns

BACKEND = "census"
RETURNTYPE = "geographies"
GEOCODE_COLUMNS = [f.name for f in schema.GEOCODES]


class ConfiguredCensusGeocode(censusgeocode.CensusGeocode):
    """censusgeocode's client with its URL template taken from [geocoder] census_url."""

    def __init__(self, base_url: str, benchmark: str | None = None, vintage: str | None = None):
        super().__init__(benchmark=benchmark, vintage=vintage)
        # censusgeocode has no URL argument; `_url` is the template every call formats.
        self._url = base_url.rstrip("/") + "/{returntype}/{searchtype}"

    def batch_url(self, returntype: str = RETURNTYPE) -> str:
        return self._geturl("addressbatch", returntype)


def census_client(settings: Any) -> ConfiguredCensusGeocode:
    return ConfiguredCensusGeocode(settings.census_url, settings.benchmark, settings.vintage)




def geocode_one_line(address: str, settings: Any, layers: str = "all") -> dict:
    """One address through censusgeocode's onelineaddress (JSON): a GEOCODES row as a dict.

    Several candidates come back as status 'tie' (the JSON API lists them; the batch API does not).
    """
    client = census_client(settings)
    matches = client.onelineaddress(address, returntype=RETURNTYPE, layers=layers,
                                    timeout=float(settings.timeout_seconds))
    row: dict[str, Any] = {c: None for c in GEOCODE_COLUMNS}
    row["backend"] = BACKEND
    if len(matches) != 1:
        row["status"] = "no_match" if not matches else "tie"
        return row
    match = matches[0]
    row.update(status="match", matched_address=match.get("matchedAddress"),
               lon=float(match["coordinates"]["x"]), lat=float(match["coordinates"]["y"]),
               tiger_line_id=int(match["tigerLine"]["tigerLineId"]), side=match["tigerLine"].get("side"))
    row.update(geographies_to_columns(match.get("geographies") or {}))
    return row
