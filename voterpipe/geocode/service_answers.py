"""The answers of the Census-compatible service, from the TIGER engine's results: batch CSV rows
(the Census columns exactly) and the single-address JSON (Census shape, plus matchMethod and
matchScore), with its geography layers."""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd

from voterpipe.geocode.service_input import ENGINE_COLUMNS, split_address

DEFAULT_BENCHMARK = {"id": "4", "benchmarkName": "Public_AR_Current",
                     "benchmarkDescription": "Public Address Ranges - Current Benchmark",
                     "isDefault": True}
DEFAULT_VINTAGE = {"id": "4", "vintageName": "Current_Current",
                   "vintageDescription": "Current Vintage - Current Benchmark", "isDefault": True}
# Layer names as the live service spells them for the Current vintage; clients match by suffix.
LAYER_STATES = "States"
LAYER_COUNTIES = "Counties"
LAYER_TRACTS = "Census Tracts"
LAYER_BLOCK_GROUPS = "Census Block Groups"
LAYER_BLOCKS = "2020 Census Blocks"
LAYER_CD = "119th Congressional Districts"
LAYER_SLDU = "2024 State Legislative Districts - Upper"
LAYER_SLDL = "2024 State Legislative Districts - Lower"
DEFAULT_LAYERS = (LAYER_STATES, LAYER_COUNTIES, LAYER_TRACTS, LAYER_BLOCKS)
ALL_LAYERS = (LAYER_STATES, LAYER_COUNTIES, LAYER_TRACTS, LAYER_BLOCK_GROUPS, LAYER_BLOCKS,
              LAYER_CD, LAYER_SLDU, LAYER_SLDL)



def geocode_rows(engine: Any, rows: list[list[str]]) -> pd.DataFrame:
    """Engine results for batch rows [id, street, city, state, zip], indexed by id."""
    parts = []
    for row in rows:
        unique_id, street, city, state, zip_code = (row + [""] * 5)[:5]
        split = split_address(street, city, state, zip_code)
        parts.append({"address_key": unique_id, **split})
    frame = pd.DataFrame(parts, columns=ENGINE_COLUMNS).fillna("")
    if frame.empty:
        return pd.DataFrame(columns=["address_key", "status"]).set_index("address_key")
    return engine.geocode(frame).drop_duplicates("address_key").set_index("address_key")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value)


def batch_answer_rows(rows: list[list[str]], results: pd.DataFrame, returntype: str) -> list[list[str]]:
    """The Census batch rows: Match rows 8 (locations) or 12 (geographies) wide, others 3."""
    out = []
    for row in rows:
        unique_id = row[0]
        fields = (row + [""] * 5)[1:5]
        echo = ", ".join(fields)
        result = results.loc[unique_id] if unique_id in results.index else None
        status = _text(result["status"]) if result is not None else "no_match"
        if status != "match":
            out.append([unique_id, echo, "Tie" if status == "tie" else "No_Match"])
            continue
        match_type = "Exact" if _text(result.get("match_type")) in ("", "exact") else "Non_Exact"
        line = [unique_id, echo, "Match", match_type, _text(result.get("matched_address")),
                f"{float(result['lon'])!r},{float(result['lat'])!r}",
                _text(int(result["tiger_line_id"])) if _text(result.get("tiger_line_id")) else "",
                _text(result.get("side"))]
        if returntype == "geographies":
            line += [_text(result.get("state_fips")), _text(result.get("county_fips")),
                     _text(result.get("tract")), _text(result.get("block"))]
        out.append(line)
    return out


def render_csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _signed(value: float, width: int) -> str:
    # Census writes centroid strings with sign and zero padding: "+38.8971157", "-077.0365336".
    return f"{value:+0{width}.7f}"


def geography_layers(result: Any, wanted: tuple[str, ...], lon: float, lat: float) -> dict:
    """The `geographies` object of a match: layer name -> [record], Census field names."""
    state, county = _text(result.get("state_fips")), _text(result.get("county_fips"))
    tract, block = _text(result.get("tract")), _text(result.get("block"))
    group = _text(result.get("block_group")) or block[:1]
    # The engine knows no polygon centroids; the matched point stands in for them.
    point = {"CENTLAT": _signed(lat, 11), "CENTLON": _signed(lon, 12),
             "INTPTLAT": _signed(lat, 11), "INTPTLON": _signed(lon, 12)}
    records = {
        LAYER_STATES: {"GEOID": state, "STATE": state, "BASENAME": state, "NAME": state,
                       "MTFCC": "G4000"},
        LAYER_COUNTIES: {"GEOID": state + county, "STATE": state, "COUNTY": county,
                         "BASENAME": county, "NAME": county, "MTFCC": "G4020"},
        LAYER_TRACTS: {"GEOID": state + county + tract, "STATE": state, "COUNTY": county,
                       "TRACT": tract, "BASENAME": tract, "NAME": f"Census Tract {tract}",
                       "MTFCC": "G5020"},
        LAYER_BLOCK_GROUPS: {"GEOID": state + county + tract + group, "STATE": state,
                             "COUNTY": county, "TRACT": tract, "BLKGRP": group,
                             "BASENAME": group, "NAME": f"Block Group {group}", "MTFCC": "G5030"},
        LAYER_BLOCKS: {"GEOID": state + county + tract + block, "STATE": state, "COUNTY": county,
                       "TRACT": tract, "BLKGRP": group, "BLOCK": block, "BASENAME": block,
                       "NAME": f"Block {block}", "MTFCC": "G5000"},
    }
    districts = {LAYER_CD: ("congressional_district", "CD119", "G5200"),
                 LAYER_SLDU: ("state_senate_district", "SLDU", "G5210"),
                 LAYER_SLDL: ("state_house_district", "SLDL", "G5220")}
    for layer, (column, code_field, mtfcc) in districts.items():
        code = _text(result.get(column))
        records[layer] = {"GEOID": state + code, "STATE": state, code_field: code,
                          "BASENAME": code, "NAME": code, "MTFCC": mtfcc} if code else None
    if records[LAYER_CD]:
        records[LAYER_CD]["CDSESSN"] = "119"
    out = {}
    for layer in wanted:
        record = records.get(layer)
        out[layer] = [{**record, **point, "OID": "0", "OBJECTID": 0}] if record else []
    return out


def _wanted_layers(layers: str | None) -> tuple[str, ...]:
    if not layers:
        return DEFAULT_LAYERS
    if layers.strip().lower() == "all":
        return ALL_LAYERS
    asked = [p.strip().lower() for p in layers.split(",") if p.strip()]
    return tuple(name for name in ALL_LAYERS if any(a in name.lower() for a in asked))


def single_answer(engine: Any, returntype: str, parts: dict, input_address: dict,
                  benchmark: str, vintage: str, layers: str | None) -> dict:
    """The JSON body of onelineaddress/address: Census shape, an empty list when nothing matches."""
    frame = pd.DataFrame([{"address_key": "1", **parts}], columns=ENGINE_COLUMNS).fillna("")
    result = engine.geocode(frame).iloc[0]
    matches = []
    if _text(result.get("status")) == "match":
        lon, lat = float(result["lon"]), float(result["lat"])
        match = {
            "matchedAddress": _text(result.get("matched_address")),
            "coordinates": {"x": lon, "y": lat},
            "tigerLine": {"tigerLineId": _text(int(result["tiger_line_id"])),
                          "side": _text(result.get("side"))},
            # Not in the Census layout (clients ignore unknown keys): how the engine found it.
            "matchMethod": _text(result.get("match_method")),
            "matchScore": round(float(result["match_score"]), 3)
            if _text(result.get("match_score")) else None,
            "addressComponents": {
                # The engine does not return the matched range; from/to stay empty.
                "fromAddress": "", "toAddress": "", "preQualifier": "",
                "preDirection": parts["pre_dir"], "preType": "",
                "streetName": parts["street_name"], "suffixType": parts["street_type"],
                "suffixDirection": parts["post_dir"], "suffixQualifier": "",
                "state": parts["state"], "city": parts["city"], "zip": parts["zip5"]},
        }
        if returntype == "geographies":
            match["geographies"] = geography_layers(result, _wanted_layers(layers), lon, lat)
        matches.append(match)
    result_input = {"address": input_address,
                    "benchmark": {**DEFAULT_BENCHMARK, "benchmarkName": benchmark}}
    if returntype == "geographies":
        result_input["vintage"] = {**DEFAULT_VINTAGE, "vintageName": vintage}
    return {"result": {"input": result_input, "addressMatches": matches}}
