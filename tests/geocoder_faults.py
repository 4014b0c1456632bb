"""Test-only fault injection for the geocoder service: a FaultPlan is the service's batch hook and
misbehaves the way the live Census service is known to (errors, HTML, cut answers, lost ids...)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from voterpipe.geocode.service import BatchCall
from voterpipe.geocode.service_answers import render_csv

FAULTS = ("http_500", "http_503", "http_400", "html", "truncate", "truncate_clean", "drop",
          "missing_ids", "duplicate_ids", "slow", "no_match_all")
HTML_ERROR_PAGE = (b"<!DOCTYPE html><html><head><title>Error</title></head><body>"
                   b"<h1>The server encountered an internal error</h1></body></html>")


@dataclass
class FaultPlan:
    """How the service misbehaves, decided per batch request (numbered from 0 in arrival order).

    schedule[n] is the fault of batch request n (None = behave); later requests get `default`.
    `latency_seconds + latency_per_row * rows` is added to every batch answer (realistic slowness);
    `slow_seconds` is the delay of the 'slow' fault (set it above the client's timeout).
    `served` lists (request number, fault) for every request seen, in arrival order.
    """

    schedule: list[str | None] = field(default_factory=list)
    default: str | None = None
    latency_seconds: float = 0.0
    latency_per_row: float = 0.0
    slow_seconds: float = 5.0
    served: list[tuple[int, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        for fault in [*self.schedule, self.default]:
            if fault is not None and fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")

    def fault_for(self, request_number: int) -> str | None:
        if request_number < len(self.schedule):
            return self.schedule[request_number]
        return self.default

    def faults_served(self) -> list[str | None]:
        """The fault of each request so far, by request number."""
        with self._lock:
            return [fault for _, fault in sorted(self.served)]

    def __call__(self, call: BatchCall) -> bool:
        """The service's batch hook: always answers the request itself."""
        fault = self.fault_for(call.number)
        with self._lock:
            self.served.append((call.number, fault))
        delay = self.latency_seconds + self.latency_per_row * len(call.rows)
        if fault == "slow":
            delay += self.slow_seconds
        if delay > 0:
            time.sleep(delay)
        handler = call.handler
        if fault == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        elif fault in ("http_500", "http_503", "http_400"):
            call.send(int(fault[5:]), b"Internal error: the service is unavailable", "text/plain")
        elif fault == "html":
            call.send(200, HTML_ERROR_PAGE, "text/html;charset=utf-8")
        else:
            answer = _altered(call.answer_rows(), fault)
            if fault in ("truncate", "truncate_clean"):
                _send_cut(handler, render_csv(answer), clean=fault == "truncate_clean")
            else:
                call.send_rows(answer)
        return True


def _altered(answer: list[list[str]], fault: str | None) -> list[list[str]]:
    if fault == "no_match_all":
        return [[r[0], r[1], "No_Match"] for r in answer]
    if fault == "missing_ids" and answer:
        return answer[:-1] if len(answer) > 1 else []
    if fault == "duplicate_ids" and answer:
        return answer + answer[:1]
    return answer


def _send_cut(handler, payload: bytes, clean: bool) -> None:
    """truncate: declares the full length, sends half, hangs up (an incomplete read).
    truncate_clean: no length at all and cut mid-row, so only the content shows the loss."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    if clean:
        handler.send_header("Connection", "close")
        handler.end_headers()
        newline = payload.find(b"\n", len(payload) // 2)
        cut = newline + 6 if 0 <= newline < len(payload) - 6 else max(1, len(payload) - 5)
        handler.wfile.write(payload[:cut])  # a few bytes into a row, inside its quoted id
        handler.close_connection = True
        return
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload[: len(payload) // 2])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)
