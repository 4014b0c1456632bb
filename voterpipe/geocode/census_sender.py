"""Sending batches to the Census Geocoder: a timeout on every request, bounded retries with
backoff, a resend of No_Match/Tie rows, and the districts of matched blocks."""

from __future__ import annotations

import io
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder

from voterpipe.geocode.census_batch_file import CensusResponseError, encode_batch_csv, parse_batch_response
from voterpipe.geocode.census_client import RETURNTYPE, census_client
from voterpipe.geocode.census_geographies import DISTRICT_COLUMNS, block_geoid, geographies_to_columns

log = logging.getLogger("voterpipe.geocode.census")

RECHECK_BATCH_ROWS = 100  # No_Match/Tie rows are resent once in batches this small
RETRYABLE_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class CensusGeocoderError(RuntimeError):
    """A batch still failed after [geocoder] max_retries retries; finished batches are cached."""


@dataclass
class CensusRunStats:
    """Counters of one geocode_with_census run (tests assert on them; the task logs them)."""

    requests: int = 0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    batches_done: int = 0
    rows_sent: int = 0
    rechecked_rows: int = 0
    recheck_matches: int = 0
    cached_keys: int = 0
    district_requests: int = 0
    offline_district_rows: int = 0  # matches whose districts came from imported TIGER faces
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def failure(self, kind: str) -> None:
        with self._lock:
            self.failures[kind] = self.failures.get(kind, 0) + 1

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def _result_kind(exc: BaseException) -> str:
    if isinstance(exc, CensusResponseError):
        text = str(exc)
        if "HTML" in text:
            return "html"
        if "HTTP" in text:
            return "http_status"
        if "ids" in text:
            return "ids"
        return "malformed"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)):
        return "truncated"
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection"
    return type(exc).__name__


# -- one batch ----------------------------------------------------------------------------------
class CensusBatchSender:
    """Sends batches to one geocoder with a timeout on every request and bounded retries.

    Thread-safe: each worker thread gets its own requests.Session (Sessions are not thread-safe).
    """

    def __init__(self, settings: Any, stats: CensusRunStats | None = None,
                 backoff_seconds: float = 1.0, backoff_cap_seconds: float = 60.0,
                 recheck_batch_rows: int = RECHECK_BATCH_ROWS, districts: bool = False,
                 sleep: Callable[[float], None] = time.sleep):
        self.client = census_client(settings)
        self.districts = districts
        self.block_districts: dict[str, tuple] = {}  # block GEOID -> DISTRICT_COLUMNS values
        self.offline_districts: dict[str, tuple] = {}  # the same, from imported TIGER faces
        self._blocks_lock = threading.Lock()
        self._blocks_pending: dict[str, threading.Event] = {}
        self.timeout = float(settings.timeout_seconds)
        if not self.timeout > 0:
            raise ValueError("[geocoder] timeout_seconds must be positive: every request needs one")
        self.max_retries = max(0, int(settings.max_retries))
        self.stats = stats or CensusRunStats()
        self.backoff_seconds = backoff_seconds
        self.backoff_cap_seconds = backoff_cap_seconds
        self.recheck_batch_rows = max(1, recheck_batch_rows)
        self.sleep = sleep
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "voterpipe-census-backend"
            self._local.session = session
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def post_once(self, rows: pd.DataFrame) -> pd.DataFrame:
        """One POST of `rows`; the parsed, id-checked answer or an exception."""
        form = MultipartEncoder(fields={
            "vintage": self.client.vintage,
            "benchmark": self.client.benchmark,
            "addressFile": ("batch.csv", io.BytesIO(encode_batch_csv(rows)), "text/plain"),
        })
        self.stats.count("requests")
        self.stats.count("rows_sent", len(rows))
        # (connect, read) timeouts: a dead host fails fast, a long batch may take minutes.
        timeout = (min(self.timeout, 30.0), self.timeout)
        with self._session().post(self.client.batch_url(), data=form, timeout=timeout,
                                  headers={"Content-Type": form.content_type}) as response:
            if response.status_code != 200:
                raise CensusResponseError(
                    f"HTTP {response.status_code} from the batch endpoint",
                    retryable=response.status_code in RETRYABLE_HTTP_STATUSES
                    or response.status_code >= 500)
            if "html" in response.headers.get("Content-Type", "").lower():
                raise CensusResponseError("an HTML page came back instead of CSV")
            text = response.content.decode("utf-8", errors="replace")
        return parse_batch_response(text, list(rows["id"]))

    def post_with_retries(self, rows: pd.DataFrame, label: str) -> pd.DataFrame:
        return self._retrying(lambda: self.post_once(rows), f"batch {label} ({len(rows)} rows)")

    def _retrying(self, call: Callable[[], Any], what: str) -> Any:
        """`call()` with up to max_retries retries, exponential backoff and jitter in between."""
        attempt = 0
        while True:
            try:
                return call()
            except (requests.RequestException, CensusResponseError) as exc:
                kind = _result_kind(exc)
                self.stats.failure(kind)
                retryable = getattr(exc, "retryable", True)
                if not retryable or attempt >= self.max_retries:
                    # Query strings of single-address calls hold the address: never log them.
                    detail = re.sub(r"\?[^\s'\")]*", "?...", str(exc))
                    raise CensusGeocoderError(
                        f"{what} failed after {attempt + 1} attempt(s): {kind}: {detail}") from exc
                delay = min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** attempt)
                delay = delay / 2 + random.uniform(0, delay / 2)  # jitter spreads retrying workers
                log.warning("census %s: attempt %d failed (%s); retrying in %.2f s",
                            what, attempt + 1, kind, delay)
                self.stats.count("retries")
                attempt += 1
                self.sleep(delay)

    def districts_of(self, line: str) -> dict:
        """CD/SLDU/SLDL (and the block) of one address via censusgeocode's onelineaddress JSON."""
        def call() -> dict:
            self.stats.count("district_requests")
            try:
                matches = self.client.onelineaddress(line, returntype=RETURNTYPE, layers="all",
                                                     timeout=(min(self.timeout, 30.0), self.timeout))
            except ValueError as exc:  # censusgeocode's answer to a body that is not JSON
                raise CensusResponseError(f"district lookup: {exc}") from exc
            if len(matches) != 1:
                return {}
            return geographies_to_columns(matches[0].get("geographies") or {})
        return self._retrying(call, "district lookup")

    def _block_districts_once(self, block: str, row: pd.Series) -> tuple | None:
        """The districts of `block`, looked up by one thread while others wanting it wait."""
        with self._blocks_lock:
            known = self.block_districts.get(block)
            pending = self._blocks_pending.get(block)
            mine = known is None and pending is None
            if mine:
                pending = self._blocks_pending[block] = threading.Event()
        if known is not None:
            return known
        if not mine:
            pending.wait()
            with self._blocks_lock:
                return self.block_districts.get(block)
        line = f"{row['street']}, {row['city']}, {row['state']} {row['zip']}".strip()
        try:
            found = self.districts_of(line)
            known = tuple(found.get(c) for c in DISTRICT_COLUMNS)
        except CensusGeocoderError as exc:
            log.warning("census district lookup for one block failed: %s", exc)
        with self._blocks_lock:
            if known is not None:
                self.block_districts[block] = known
            del self._blocks_pending[block]
        pending.set()
        return known

    def fill_districts(self, result: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        """Districts for a batch's matches, one JSON lookup per block not seen before.

        The batch CSV carries no districts (reference §2.2). Districts are constant within a
        block, so one address per block answers for all of them; a lookup that fails for good
        leaves that block's districts empty rather than failing the batch.
        """
        matched = result[(result["status"] == "match") & result["block"].notna()
                         & result["congressional_district"].isna()]
        if matched.empty:
            return result
        geoid = block_geoid(matched)
        sent = rows.set_index("id")
        for block, ids in geoid.groupby(geoid, sort=False).groups.items():
            known = self._block_districts_once(block, sent.loc[ids[0]])
            if known is None:
                continue
            result.loc[ids, list(DISTRICT_COLUMNS)] = known
        return result

    def join_offline_districts(self, result: pd.DataFrame) -> pd.DataFrame:
        """Districts of the matches whose block is in the imported TIGER faces: a join, no call."""
        matched = result[(result["status"] == "match") & result["block"].notna()]
        found = block_geoid(matched).map(self.offline_districts).dropna()
        if len(found):
            result.loc[found.index, list(DISTRICT_COLUMNS)] = pd.DataFrame(
                found.tolist(), index=found.index, columns=list(DISTRICT_COLUMNS))
            self.stats.count("offline_district_rows", len(found))
        return result

    def geocode_batch(self, rows: pd.DataFrame, label: str) -> pd.DataFrame:
        """Geocode one batch, then resend its No_Match/Tie rows once in small batches.

        The Census service is not deterministic (reference §4: resubmitting changes Match/No_Match/
        Tie), so the recheck's answer replaces the first one. A recheck that fails for good fails
        the batch: its first answers may be a faulty all-No_Match reply and must not be cached.
        """
        result = self.post_with_retries(rows, label).set_index("id")
        unmatched = result.index[result["status"] != "match"]
        if len(unmatched):
            again = rows[rows["id"].isin(unmatched)]
            for start in range(0, len(again), self.recheck_batch_rows):
                chunk = again.iloc[start:start + self.recheck_batch_rows]
                self.stats.count("rechecked_rows", len(chunk))
                try:
                    second = self.post_with_retries(chunk, f"{label}/recheck{start}").set_index("id")
                except CensusGeocoderError as exc:
                    raise CensusGeocoderError(f"census batch {label}: the recheck of {len(chunk)} "
                                              f"No_Match/Tie rows failed, so the batch is not kept: {exc}") from None
                result = pd.concat([result.drop(index=second.index), second])
                self.stats.count("recheck_matches", int((second["status"] == "match").sum()))
        result = result.astype({c: object for c in DISTRICT_COLUMNS})
        if self.offline_districts:
            result = self.join_offline_districts(result)
        if self.districts:
            result = self.fill_districts(result, rows)
        self.stats.count("batches_done")
        return result.reset_index()
