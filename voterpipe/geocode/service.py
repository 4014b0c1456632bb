"""A Census-compatible geocoding HTTP service answered by the offline TIGER engine, so an organisation
can host one shared geocoder. A batch hook (see BatchCall) may answer a request itself; tests use it
to inject faults, and the service itself holds no fault logic.

Endpoints (same paths, form fields, CSV layout and JSON shape as geocoding.geo.census.gov):
  POST /geocoder/{locations,geographies}/addressbatch    multipart addressFile, benchmark, vintage
  GET  /geocoder/{locations,geographies}/onelineaddress  address, benchmark, vintage, layers
  GET  /geocoder/{locations,geographies}/address         street, city, state, zip, ...
A single-address match also carries matchMethod and matchScore (keys the Census JSON does not
use); the batch CSV keeps the Census columns exactly, so its parsers keep working.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
import threading
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from voterpipe.addresses.parse import normalise_line

log = logging.getLogger(__name__)

BATCH_LIMIT = 10_000
RETURNTYPES = ("locations", "geographies")
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
ENGINE_COLUMNS = ["address_key", "house_number", "pre_dir", "street_name", "street_type",
                  "post_dir", "zip5", "city", "state"]


# -- free-text addresses -> parts ----------------------------------------------------------------
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


# -- batch requests and the hook ------------------------------------------------------------------
@dataclass
class BatchRequestRecord:
    number: int
    returntype: str
    rows: int
    ids: list[str]


@dataclass
class BatchCall:
    """One addressbatch request as a hook sees it: its number (arrival order from 0), rows, and
    ways to answer. A hook returns True when it has answered (or hung up) itself."""

    number: int
    returntype: str
    rows: list[list[str]]
    handler: "GeocoderHandler"

    def answer_rows(self) -> list[list[str]]:
        """The service's own answer rows, in the shuffled order the live service also uses."""
        results = geocode_rows(self.handler.server.engine, self.rows)
        answer = batch_answer_rows(self.rows, results, self.returntype)
        random.Random(self.number).shuffle(answer)
        return answer

    def send_rows(self, answer: list[list[str]]) -> None:
        headers = {"Content-Disposition": "attachment; filename=GeocodeResults.csv"}
        self.handler.send(200, render_csv(answer), "text/plain", headers)

    def send(self, status: int, body: bytes, content_type: str) -> None:
        self.handler.send(status, body, content_type)


BatchHook = Callable[[BatchCall], bool]


# -- answering -------------------------------------------------------------------------------------
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


# -- HTTP -----------------------------------------------------------------------------------------
class GeocoderHandler(BaseHTTPRequestHandler):
    server: "GeocoderServer"
    protocol_version = "HTTP/1.1"  # keep-alive, like the live service
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def _route(self) -> tuple[str, str] | None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "geocoder" and parts[1] in RETURNTYPES:
            return parts[1], parts[2]
        return None

    def send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self.send(status, message.encode(), "text/plain; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        route = self._route()
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if route is None or route[1] not in ("onelineaddress", "address"):
            return self._error(404, "not found")
        self.server.count_single_request()
        returntype, searchtype = route
        benchmark = query.get("benchmark") or DEFAULT_BENCHMARK["benchmarkName"]
        vintage = query.get("vintage") or DEFAULT_VINTAGE["vintageName"]
        if searchtype == "onelineaddress":
            if not query.get("address"):
                return self._error(400, "address is required")
            parts = split_one_line(query["address"])
            input_address = {"address": query["address"]}
        else:
            if not query.get("street"):
                return self._error(400, "street is required")
            parts = split_address(query["street"], query.get("city", ""), query.get("state", ""),
                                  query.get("zip", ""))
            input_address = {k: query.get(k, "") for k in ("street", "city", "state", "zip")}
        body = single_answer(self.server.engine, returntype, parts, input_address, benchmark,
                             vintage, query.get("layers"))
        self.send(200, json.dumps(body).encode(), "application/json;charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        route = self._route()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if route is None or route[1] != "addressbatch":
            return self._error(404, "not found")
        returntype = route[0]
        try:
            form = parse_multipart(self.headers.get("Content-Type", ""), body)
            address_file = form["addressFile"]
        except (KeyError, ValueError):
            return self._error(400, "a multipart form with an addressFile part is required")
        rows = [r for r in csv.reader(io.StringIO(address_file.decode("utf-8", errors="replace"))) if r]
        if len(rows) > BATCH_LIMIT:
            return self._error(400, f"more than {BATCH_LIMIT} records in the address file")
        number = self.server.next_batch_request(returntype, rows)
        call = BatchCall(number, returntype, rows, self)
        hook = self.server.hook
        if hook is None or not hook(call):
            call.send_rows(call.answer_rows())

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
            self.close_connection = True


def parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Form fields of a multipart/form-data body: name -> bytes."""
    if "multipart/form-data" not in content_type:
        raise ValueError("not multipart/form-data")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


class GeocoderServer(ThreadingHTTPServer):
    """The service; `requests` records every batch request (number, rows, ids); `hook`, when set,
    is consulted for each batch request before the service answers it."""

    daemon_threads = True  # a 'slow' answer nobody waits for must not block shutdown
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: Any, hook: BatchHook | None = None):
        super().__init__(address, GeocoderHandler)
        self.engine = engine
        self.hook = hook
        self.requests: list[BatchRequestRecord] = []
        self.single_requests = 0  # onelineaddress/address calls
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/geocoder/"

    def next_batch_request(self, returntype: str, rows: list[list[str]]) -> int:
        with self._lock:
            number = len(self.requests)
            self.requests.append(BatchRequestRecord(number, returntype, len(rows),
                                                    [r[0] for r in rows]))
        return number

    def count_single_request(self) -> None:
        with self._lock:
            self.single_requests += 1

    def start(self) -> "GeocoderServer":
        """Serve on a background thread (tests, benchmarks); stop() ends it."""
        self._thread = threading.Thread(target=self.serve_forever, name="geocoder-service",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def make_server(host: str, port: int, engine: Any, hook: BatchHook | None = None) -> GeocoderServer:
    """A service bound to host:port (0 = an ephemeral port) answering from `engine`
    (anything with TigerGeocoder's geocode(frame) -> GEOCODES frame). Call .start()/.stop() or
    .serve_forever(). `hook` sees every batch request first (see BatchCall)."""
    return GeocoderServer((host, port), engine, hook)


def serve_forever(host: str = "127.0.0.1", port: int = 8080,
                  engine_factory: Callable[[], Any] | None = None) -> None:
    """`voterpipe geocoder serve`: the TIGER engine from cache/tiger behind the Census API."""
    if engine_factory is None:
        from voterpipe.geocode.tiger import TigerGeocoder

        engine_factory = TigerGeocoder.load
    server = make_server(host, port, engine_factory())
    print(f"voterpipe geocoder listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
