"""A Census-compatible geocoding HTTP service answered by the offline TIGER engine, so an organisation
can host one shared geocoder. A batch hook (see BatchCall) may answer a request itself; tests use it
to inject faults, and the service itself holds no fault logic.

Endpoints (same paths, form fields, CSV layout and JSON shape as geocoding.geo.census.gov):
  POST /geocoder/{locations,geographies}/addressbatch    multipart addressFile, benchmark, vintage
  GET  /geocoder/{locations,geographies}/onelineaddress  address, benchmark, vintage, layers
  GET  /geocoder/{locations,geographies}/address         street, city, state, zip, ...
A single-address match also carries matchMethod and matchScore (keys the Census JSON does not
use); the batch CSV keeps the Census columns exactly, so its parsers keep working.
This module is the HTTP side; service_input.py splits addresses, service_answers.py words answers.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import threading
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from voterpipe.geocode.service_answers import (
    DEFAULT_BENCHMARK, DEFAULT_VINTAGE, batch_answer_rows, geocode_rows, render_csv, single_answer)
from voterpipe.geocode.service_input import split_address, split_one_line

log = logging.getLogger("voterpipe.geocode.service")

BATCH_LIMIT = 10_000
RETURNTYPES = ("locations", "geographies")


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
