"""The Census Geocoder backend: batches through the censusgeocode client against [geocoder] census_url,
with timeouts, bounded retries, id checks, a Tie/No_Match recheck and one cache part per batch.

What comes from censusgeocode 0.5.3 and what is ours, and why:
- CensusGeocode (subclassed, its `_url` template set from census_url) builds every URL, carries
  benchmark/vintage, names the batch columns (`batchfields`) and answers single-address JSON calls
  (`onelineaddress`), where its parsing is sound.
- The batch POST is sent on our own requests.Session with the same multipart form censusgeocode
  builds (addressFile=batch.csv text/plain, benchmark, vintage). censusgeocode's addressbatch()
  cannot be used for it: it posts with no timeout by default, never looks at the HTTP status,
  turns an HTML error page into one junk row, and folds Tie into no match (reference §5.3).
- The batch CSV is parsed here with fixed field names, short rows allowed, Tie kept distinct,
  and every id sent must come back exactly once or the whole batch is retried.
"""

from __future__ import annotations

import csv
import io
import logging
import random
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import censusgeocode
import numpy as np
import pandas as pd
import pyarrow as pa
import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder

from voterpipe import schema, storage

log = logging.getLogger(__name__)

BACKEND = "census"
BATCH_LIMIT = 10_000  # records per file accepted by the Census batch endpoint
RETURNTYPE = "geographies"
RECHECK_BATCH_ROWS = 100  # No_Match/Tie rows are resent once in batches this small
NOT_SENT_PARSE_STATUSES = frozenset({"missing", "unparseable", "po_box"})
RETRYABLE_HTTP_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MATCH_INDICATORS = {"Match": "match", "No_Match": "no_match", "Tie": "tie"}
GEOCODE_COLUMNS = [f.name for f in schema.GEOCODES]
DISTRICT_COLUMNS = ("congressional_district", "state_senate_district", "state_house_district")


class CensusResponseError(Exception):
    """A batch answer that cannot be trusted. Messages carry counts and ids, never addresses."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class CensusGeocoderError(RuntimeError):
    """A batch still failed after [geocoder] max_retries retries; finished batches are cached."""


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


# -- request rows ---------------------------------------------------------------------------------
def _clean_field(values: pd.Series) -> pd.Series:
    # An unquoted comma shifts the Census fields and loses the ZIP, so commas go (reference §2.1).
    return (values.fillna("").astype(str).str.replace(",", " ", regex=False)
            .str.replace(r"\s+", " ", regex=True).str.strip())


def street_line(addresses: pd.DataFrame) -> pd.Series:
    """'123 N MAIN ST' from the parts; the unit is left out because the geocoder ignores it."""
    parts = [_clean_field(addresses[c]) for c in
             ("house_number", "pre_dir", "street_name", "street_type", "post_dir")]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + " " + part
    return joined.str.replace(r"\s+", " ", regex=True).str.strip()


def sendable_mask(addresses: pd.DataFrame) -> pd.Series:
    """Addresses worth sending: parsed, with a house number and a street name."""
    status = addresses["parse_status"].fillna("missing").astype(str)
    number = addresses["house_number"].fillna("").astype(str).str.strip()
    name = addresses["street_name"].fillna("").astype(str).str.strip()
    return ~status.isin(NOT_SENT_PARSE_STATUSES) & (number != "") & (name != "")


def request_rows(addresses: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(requests, key_map): one request per distinct street/city/state/zip, and address_key ->
    request id. Units of one building share a request."""
    fields = pd.DataFrame({
        "street": street_line(addresses).to_numpy(),
        "city": _clean_field(addresses["city"]).to_numpy(),
        "state": _clean_field(addresses["state"]).to_numpy(),
        "zip": _clean_field(addresses["zip5"]).to_numpy(),
    })
    codes = fields.groupby(["street", "city", "state", "zip"], sort=False, dropna=False).ngroup()
    key_map = pd.DataFrame({"address_key": addresses["address_key"].to_numpy(),
                            "request_id": (codes + 1).astype(str).to_numpy()})
    first = ~codes.duplicated()
    requests_df = fields[first.to_numpy()].copy()
    requests_df.insert(0, "id", (codes[first] + 1).astype(str).to_numpy())
    return requests_df.reset_index(drop=True), key_map


def encode_batch_csv(rows: pd.DataFrame) -> bytes:
    """The headerless id,street,city,state,zip file the batch endpoint takes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows[["id", "street", "city", "state", "zip"]].itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


# -- response parsing ---------------------------------------------------------------------------
def parse_batch_response(text: str, sent_ids: list[str] | None = None,
                         returntype: str = RETURNTYPE) -> pd.DataFrame:
    """The Census batch CSV as a frame keyed by request `id` with GEOCODES columns.

    Rows are headerless, every field quoted, widths 12/8 for Match and 3 for No_Match/Tie, in any
    order. With `sent_ids`, the ids returned must equal the ids sent, each exactly once.
    """
    fieldnames = censusgeocode.CensusGeocode.batchfields[returntype]
    match_width = len(fieldnames)
    stripped = text.lstrip()
    if stripped[:1] == "<" or stripped[:15].lower().startswith("<!doctype"):
        raise CensusResponseError("an HTML page came back instead of CSV")
    records = []
    try:
        reader = csv.reader(io.StringIO(text), strict=True)
        for line_number, row in enumerate(reader, 1):
            if not row:
                continue
            if len(row) < 3:
                raise CensusResponseError(f"response line {line_number}: {len(row)} fields, need 3+")
            indicator = MATCH_INDICATORS.get(row[2])
            if indicator is None:
                raise CensusResponseError(f"response line {line_number}: unknown match indicator")
            record = {"id": row[0], "status": indicator}
            if indicator == "match":
                if len(row) != match_width:
                    raise CensusResponseError(
                        f"response line {line_number}: a Match row has {len(row)} fields, "
                        f"expected {match_width}")
                values = dict(zip(fieldnames, row))
                try:
                    lon_text, lat_text = values["coordinate"].split(",")
                    record.update(lon=float(lon_text), lat=float(lat_text),
                                  tiger_line_id=int(values["tigerlineid"]))
                except ValueError as exc:
                    raise CensusResponseError(
                        f"response line {line_number}: bad coordinate or TIGER line id") from exc
                record.update(
                    match_type=values["matchtype"].lower() or None,
                    matched_address=values["parsed"] or None,
                    side=values["side"] or None,
                )
                if returntype == "geographies":
                    block = values["block"] or None
                    record.update(state_fips=values["statefp"] or None,
                                  county_fips=values["countyfp"] or None,
                                  tract=values["tract"] or None,
                                  block=block, block_group=block[:1] if block else None)
            records.append(record)
    except csv.Error as exc:  # e.g. a body cut inside a quoted field
        raise CensusResponseError(f"unreadable CSV ({exc})") from exc
    result = pd.DataFrame.from_records(records, columns=["id", *GEOCODE_COLUMNS[1:]])
    if sent_ids is not None:
        check_ids(result["id"], sent_ids)
    return result


def check_ids(returned: pd.Series, sent_ids: list[str]) -> None:
    duplicated = returned[returned.duplicated()]
    if len(duplicated):
        raise CensusResponseError(f"{len(duplicated)} ids came back more than once "
                                  f"(e.g. {duplicated.iloc[0]!r})")
    sent = set(sent_ids)
    got = set(returned)
    missing, unknown = sent - got, got - sent
    if missing or unknown:
        example = sorted(missing or unknown)[0]
        raise CensusResponseError(f"{len(missing)} ids missing and {len(unknown)} unknown ids "
                                  f"in the answer (e.g. {example!r})")


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
        geoid = _block_geoid(matched)
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
        found = _block_geoid(matched).map(self.offline_districts).dropna()
        if len(found):
            result.loc[found.index, list(DISTRICT_COLUMNS)] = pd.DataFrame(
                found.tolist(), index=found.index, columns=list(DISTRICT_COLUMNS))
            self.stats.count("offline_district_rows", len(found))
        return result

    def geocode_batch(self, rows: pd.DataFrame, label: str) -> pd.DataFrame:
        """Geocode one batch, then resend its No_Match/Tie rows once in small batches.

        The Census service is not deterministic (reference §4: resubmitting changes Match/No_Match/
        Tie), so the recheck's answer replaces the first one; a recheck that fails for good
        leaves the first answers in place.
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
                    log.warning("census batch %s: recheck of %d rows failed, keeping first answers: %s",
                                label, len(chunk), exc)
                    continue
                result = pd.concat([result.drop(index=second.index), second])
                self.stats.count("recheck_matches", int((second["status"] == "match").sum()))
        result = result.astype({c: object for c in DISTRICT_COLUMNS})
        if self.offline_districts:
            result = self.join_offline_districts(result)
        if self.districts:
            result = self.fill_districts(result, rows)
        self.stats.count("batches_done")
        return result.reset_index()


# -- the backend --------------------------------------------------------------------------------
def _to_geocodes(frame: pd.DataFrame) -> pd.DataFrame:
    table = pa.Table.from_pandas(frame.reindex(columns=GEOCODE_COLUMNS), preserve_index=False)
    return schema.conform(table, schema.GEOCODES).to_pandas()


def _fan_out(answers: pd.DataFrame, key_map: pd.DataFrame) -> pd.DataFrame:
    """Request-level answers -> one GEOCODES row per address_key."""
    joined = key_map.merge(answers, left_on="request_id", right_on="id", how="inner")
    joined["backend"] = BACKEND
    return _to_geocodes(joined)


def _block_geoid(frame: pd.DataFrame) -> pd.Series:
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
        out.update(zip(_block_geoid(faces), values.itertuples(index=False, name=None)))
    return out


def known_block_districts(geocodes: pd.DataFrame) -> dict[str, tuple]:
    """block GEOID -> districts from rows that already have them (cached rows)."""
    have = geocodes[geocodes["block"].notna() & geocodes["congressional_district"].notna()]
    geoid = have["state_fips"] + have["county_fips"] + have["tract"] + have["block"]
    values = have[list(DISTRICT_COLUMNS)].astype(object).where(have[list(DISTRICT_COLUMNS)].notna(), None)
    return dict(zip(geoid, values.itertuples(index=False, name=None)))


def clamp_batch_size(batch_size: int) -> int:
    return max(1, min(int(batch_size), BATCH_LIMIT))


def geocode_with_census(addresses: pd.DataFrame, settings: Any, cache: Any, *,
                        progress: Callable[[float, str], None] | None = None,
                        stats: CensusRunStats | None = None,
                        backoff_seconds: float = 1.0, backoff_cap_seconds: float = 60.0,
                        recheck_batch_rows: int = RECHECK_BATCH_ROWS,
                        districts: bool | None = None,
                        tiger_dir: Path | None = None) -> pd.DataFrame:
    """GEOCODES rows (backend 'census') for every address_key of `addresses` (schema.ADDRESSES).

    Keys already in `cache` are not sent again. Each finished batch goes to cache.store() as soon
    as it completes, so a crash loses only the batches in flight. Addresses without a usable street
    get status 'not_sent'. Raises CensusGeocoderError when a batch exhausts its retries (after
    storing every batch that did finish).

    CD/SLDU/SLDL: the batch answer carries only state to block. Where TIGER data is imported
    (`tiger_dir`, default storage.cache_dir('tiger')), the block GEOID is joined to its FACES
    table, with no request. For other blocks, `districts` (default [geocoder] census_districts)
    adds them with one single-address JSON lookup per distinct block.
    """
    if districts is None:
        districts = bool(getattr(settings, "census_districts", False))
    stats = stats if stats is not None else CensusRunStats()
    addresses = addresses.drop_duplicates("address_key")
    keys = addresses["address_key"]
    cached = cache.lookup(keys)
    stats.cached_keys = len(cached)
    pending = addresses[~keys.isin(set(cached["address_key"]))]
    mask = sendable_mask(pending).to_numpy()
    to_send, not_sent = pending[mask], pending[~mask]
    not_sent_rows = _to_geocodes(pd.DataFrame({"address_key": not_sent["address_key"].to_numpy(),
                                               "status": "not_sent", "backend": BACKEND}))
    frames = [cached, not_sent_rows]

    if len(to_send):
        rows, key_map = request_rows(to_send)
        size = clamp_batch_size(settings.batch_size)
        batches = [rows.iloc[i:i + size] for i in range(0, len(rows), size)]
        # Request ids are 1..n in row order, so a key's batch is (id - 1) // size.
        batch_of_key = (key_map["request_id"].astype(int).to_numpy() - 1) // size
        keys_by_batch = dict(tuple(key_map.groupby(batch_of_key, sort=False)))
        in_flight = max(1, int(settings.batches_in_flight))
        sender = CensusBatchSender(settings, stats, backoff_seconds, backoff_cap_seconds,
                                   recheck_batch_rows, districts)
        sender.offline_districts = tiger_block_districts(tiger_dir)
        if districts:
            sender.block_districts.update(known_block_districts(cached))
        log.info("census geocoding: %d keys cached, %d not sent, %d distinct addresses in %d "
                 "batches of <= %d, %d in flight", len(cached), len(not_sent), len(rows),
                 len(batches), size, in_flight)
        frames.extend(_run_batches(batches, keys_by_batch, sender, cache, in_flight, progress))
        log.info("census geocoding done: %s", stats.as_dict())
    result = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(
        len(f) for f in frames) else _to_geocodes(pd.DataFrame(columns=GEOCODE_COLUMNS))
    order = pd.Series(np.arange(len(addresses)), index=addresses["address_key"].to_numpy())
    result = result.iloc[np.argsort(order.reindex(result["address_key"]).to_numpy(), kind="stable")]
    return _to_geocodes(result.reset_index(drop=True))


def _run_batches(batches: list[pd.DataFrame], keys_by_batch: dict[int, pd.DataFrame],
                 sender: CensusBatchSender,
                 cache: Any, in_flight: int, progress: Callable[[float, str], None] | None
                 ) -> list[pd.DataFrame]:
    """Run batches `in_flight` at a time; store each in the cache the moment it finishes."""
    done_frames: list[pd.DataFrame] = []
    failure: BaseException | None = None
    next_batch = 0
    running: dict[Future, int] = {}
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="census-batch") as pool:
        try:
            while running or (next_batch < len(batches) and failure is None):
                # Submit lazily so a failure stops new batches and a crash leaves little in flight.
                while failure is None and next_batch < len(batches) and len(running) < in_flight:
                    label = f"{next_batch + 1}/{len(batches)}"
                    running[pool.submit(sender.geocode_batch, batches[next_batch], label)] = next_batch
                    next_batch += 1
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    index = running.pop(future)
                    try:
                        answers = future.result()
                    except BaseException as exc:  # noqa: BLE001 - re-raised after in-flight batches land
                        failure = failure or exc
                        continue
                    frame = _fan_out(answers, keys_by_batch[index])
                    cache.store(frame)
                    done_frames.append(frame)
                    if progress is not None:
                        progress(len(done_frames) / len(batches),
                                 f"census: {len(done_frames)}/{len(batches)} batches")
        finally:
            sender.close()
    if failure is not None:
        if isinstance(failure, CensusGeocoderError):
            raise failure
        raise CensusGeocoderError(f"census batch failed: {failure!r}") from failure
    return done_frames


# -- single addresses (JSON) ----------------------------------------------------------------------
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
