"""The offline TIGER/Line geocoder: match standardised addresses against imported range tables.

Exact matches take a vectorised fast path: full street key + ZIP + parity + house-number range
via searchsorted. The rest go through the candidate search (tiger_search.py: misspellings,
missing suffixes and directionals, alternate names, neighbouring ZIPs), which never guesses. The
point is interpolated along the edge (FROMHN at the start vertex) and moved 10 m to the matched
side; the geographies come from the face on that side (TFIDL/TFIDR -> FACES), with no polygon
operations. block_group is the one-digit BLKGRPCE code, like tract (6) and block (4).
"""

from __future__ import annotations

import gc
import hashlib
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from voterpipe import schema, storage
from voterpipe.geocode.tiger_geometry import EdgeGeometry
from voterpipe.geocode.tiger_import import (  # noqa: F401 - the import API, re-exported
    PARITY_BOTH, PARITY_EVEN, PARITY_ODD, RANGES_FILE, VERTICES_FILE, TigerImportError,
    import_tiger_dir, read_tiger_file)
from voterpipe.geocode.tiger_names import KEY_COLUMNS, fullname_keys, match_keys, street_rules_version
from voterpipe.geocode.tiger_search import Outcome, Queries, candidate_search
from voterpipe.geocode.tiger_spelling import warm_up as spelling_warm_up
from voterpipe.geocode.tiger_streets import METHODS, REASONS, StreetCatalogue

log = logging.getLogger("voterpipe.geocode")

# Bump when matching or interpolation rules change: it keys the geocode cache.
# 2: candidate search, match_method / match_score / reason.
ENGINE_VERSION = "2"
CANDIDATE_WINDOW = 4  # ranges checked below the searchsorted position; more go to the slow path

STATE_POSTAL = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE",
    "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA",
    "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN",
    "28": "MS", "29": "MO", "30": "MT", "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM",
    "36": "NY", "37": "NC", "38": "ND", "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI",
    "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA",
    "54": "WV", "55": "WI", "56": "WY", "60": "AS", "66": "GU", "69": "MP", "72": "PR", "78": "VI",
}


# -- the geocoder -------------------------------------------------------------------------------
@dataclass
class _LevelIndex:
    """Ranges of one parity class sorted by (group code, lo) for one match level."""

    groups: pd.Index  # group strings, position = code
    combined: np.ndarray  # int64 (code << 32) | lo, sorted
    hi: np.ndarray
    row: np.ndarray  # row in the range table
    prefix_max_hi: np.ndarray  # running max of hi within the group


class TigerGeocoder:
    """Matches standardised addresses against the imported TIGER range table."""

    def __init__(self, ranges: pd.DataFrame, vertices: pd.DataFrame, years: list[str],
                 fingerprint: str):
        self.ranges = ranges.reset_index(drop=True)
        self.years = sorted(set(years))
        self.benchmark = "TIGER" + "+".join(self.years)
        self.vintage = f"engine{ENGINE_VERSION}-{fingerprint[:16]}"
        self._levels: dict[tuple[str, str, int], _LevelIndex] = {}
        self.geometry = EdgeGeometry(vertices)
        r = self.ranges
        self._lo, self._hi = r["lo"].to_numpy(np.int64), r["hi"].to_numpy(np.int64)
        self._from, self._to = r["from_hn"].to_numpy(np.int64), r["to_hn"].to_numpy(np.int64)
        self._tlid = r["tlid"].to_numpy(np.int64)
        self._is_left = (r["side"] == "L").to_numpy()
        self._geom = r["geom"].to_numpy(np.int64)
        self._identity = self._tlid * 2 + self._is_left
        kind = r["name_kind"] if "name_kind" in r.columns else pd.Series("P", index=r.index)
        self._is_alt = (kind == "A").to_numpy()
        self._catalogue: StreetCatalogue | None = None
        self.resolved: dict[tuple, object] = {}  # candidate search memo, by query keys and scope

    def scope_qualifiers(self, scope: str) -> pd.Series:
        """Each range's qualifier in `scope`: ZIP, SSCCC county, state postal code, or ''."""
        r = self.ranges
        if scope == "zip":
            return r["zip"]
        if scope == "county":
            return r["state_fips"] + r["county_fips"]
        if scope == "state":
            return r["state_fips"].map(STATE_POSTAL).fillna("")
        return pd.Series("", index=r.index)

    @property
    def catalogue(self) -> StreetCatalogue:
        """The distinct streets per scope, built on first use (only the candidate search needs it)."""
        if self._catalogue is None:
            r = self.ranges
            streets = pd.DataFrame({
                "key_full": r["key_full"], "key_nodir": r["key_nodir"], "key_base": r["key_base"],
                "zip": r["zip"], "county": self.scope_qualifiers("county"),
                "state": self.scope_qualifiers("state")}).drop_duplicates()
            self._catalogue = StreetCatalogue(streets)
        return self._catalogue

    # loading ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path | None = None) -> "TigerGeocoder":
        """Read every imported county under `directory` (default storage.cache_dir('tiger'))."""
        directory = Path(directory) if directory is not None else storage.cache_dir("tiger")
        county_dirs = sorted(p for p in directory.iterdir() if p.is_dir() and storage.is_published(p)) \
            if directory.is_dir() else []
        if not county_dirs:
            raise FileNotFoundError(
                f"no TIGER data imported under {directory}: run `voterpipe tiger import --dir DIR` "
                "with the county ADDRFEAT, EDGES and FACES files")
        range_parts, vertex_parts, years, digest = [], [], [], hashlib.sha256()
        rules = street_rules_version()
        digest.update(f"rules:{rules}".encode())
        geom_offset = 0
        for county_dir in county_dirs:
            manifest = storage.read_manifest(county_dir)
            ranges = storage.read_parquet(county_dir / RANGES_FILE).to_pandas()
            if manifest.get("street_rules_version") != rules:
                # The normaliser's rules changed since the import: rebuild the name keys so TIGER
                # names and voter addresses are standardised alike again.
                log.info("TIGER %s: rebuilding street keys for rules %s", county_dir.name, rules)
                ranges[KEY_COLUMNS] = fullname_keys(ranges["fullname"]).to_numpy()
            vertices = storage.read_parquet(county_dir / VERTICES_FILE).to_pandas()
            ranges["geom"] = ranges["geom"].astype(np.int64) + geom_offset
            vertices["geom"] = vertices["geom"].astype(np.int64) + geom_offset
            geom_offset = int(vertices["geom"].max()) + 1 if len(vertices) else geom_offset
            range_parts.append(ranges)
            vertex_parts.append(vertices)
            years.append(str(manifest.get("tiger_year", "")))
            digest.update(county_dir.name.encode())
            for kind, source in sorted(manifest.get("sources", {}).items()):
                digest.update(f"{kind}:{source.get('sha256')}".encode())
        ranges = pd.concat(range_parts, ignore_index=True)
        vertices = pd.concat(vertex_parts, ignore_index=True)
        spelling_warm_up()  # the misspelling search's kernels load while the caller gets going
        return cls(ranges, vertices, years, digest.hexdigest())

    def _level(self, key: str, scope: str, parity: int) -> _LevelIndex:
        cached = self._levels.get((key, scope, parity))
        if cached is not None:
            return cached
        r = self.ranges
        accepts = (r["parity"].to_numpy() == parity) | (r["parity"].to_numpy() == PARITY_BOTH)
        rows = np.flatnonzero(accepts)
        group_text = r[key].to_numpy(object)[rows]
        if scope != "any":
            qualifier = self.scope_qualifiers(scope)
            group_text = (r[key].iloc[rows] + "|" + qualifier.iloc[rows]).to_numpy(object)
        codes, groups = pd.factorize(group_text)
        combined = (codes.astype(np.int64) << 32) | np.clip(self._lo[rows], 0, 2**31 - 1)
        order = np.argsort(combined, kind="stable")
        combined, rows, codes = combined[order], rows[order], codes[order]
        hi = self._hi[rows]
        prefix = pd.Series(hi).groupby(codes).cummax().to_numpy(np.int64)
        index = _LevelIndex(pd.Index(groups), combined, hi, rows, prefix)
        self._levels[(key, scope, parity)] = index
        return index

    # matching -----------------------------------------------------------------------------------
    def _candidates(self, level: _LevelIndex, code: np.ndarray, number: np.ndarray):
        """For each query (group code, -1 = unknown group): (first matching range row or -1,
        number of distinct matching edge sides: 0, 1, or 2 meaning two or more = a tie)."""
        known = code >= 0
        row_out = np.full(len(code), -1, dtype=np.int64)
        count_out = np.zeros(len(code), dtype=np.int8)
        if not known.any() or len(level.combined) == 0:
            return row_out, count_out
        q_idx = np.flatnonzero(known)
        q_code = code[q_idx].astype(np.int64)
        q_num = number[q_idx]
        query = (q_code << 32) | np.clip(q_num, 0, 2**31 - 1)
        pos = np.searchsorted(level.combined, query, side="right")
        first_row = np.full(len(q_idx), -1, dtype=np.int64)
        first_identity = np.full(len(q_idx), -1, dtype=np.int64)
        distinct = np.zeros(len(q_idx), dtype=np.int8)
        for w in range(1, CANDIDATE_WINDOW + 1):
            j = pos - w
            ok = j >= 0
            jj = np.where(ok, j, 0)
            ok &= (level.combined[jj] >> 32) == q_code
            ok &= level.hi[jj] >= q_num
            rows = level.row[jj]
            identity = self._identity[rows]
            new_first = ok & (first_row < 0)
            first_row[new_first] = rows[new_first]
            first_identity[new_first] = identity[new_first]
            other = ok & ~new_first & (identity != first_identity)
            distinct[new_first] = 1
            distinct[other] = 2
        # A long range further down the group could still contain the number: check exactly.
        j = pos - CANDIDATE_WINDOW - 1
        ok = j >= 0
        jj = np.where(ok, j, 0)
        overflow = ok & ((level.combined[jj] >> 32) == q_code) & (level.prefix_max_hi[jj] >= q_num)
        for k in np.flatnonzero(overflow & (distinct < 2)):
            lo_bound = np.searchsorted(level.combined, q_code[k] << 32, side="left")
            span = slice(lo_bound, pos[k])
            hits = level.row[span][level.hi[span] >= q_num[k]]
            identities = np.unique(self._identity[hits])
            if len(identities):
                first_row[k] = hits[-1]
                distinct[k] = min(len(identities), 2)
        row_out[q_idx] = first_row
        count_out[q_idx] = distinct
        return row_out, count_out

    def geocode(self, addresses: pd.DataFrame) -> pd.DataFrame:
        """One schema.GEOCODES row per input row (same order), backend 'tiger'.

        Input columns: address_key, house_number, pre_dir, street_name, street_type, post_dir,
        zip5, optionally city and state. match_type is exact only for an exact-method match with
        a plain house number; match_method says which rule found the street (tiger_streets).
        """
        with _cyclic_gc_paused():
            return self._geocode(addresses)

    def _geocode(self, addresses: pd.DataFrame) -> pd.DataFrame:
        text = {c: _arrow_text(addresses, c) for c in (
            "address_key", "house_number", "pre_dir", "street_name", "street_type", "post_dir",
            "zip5", "city", "state")}
        number_text = text["house_number"]
        digits = pc.struct_field(pc.extract_regex(number_text, r"(?P<n>\d{1,9})"), [0])
        has_number = pc.is_valid(digits).to_numpy(zero_copy_only=False)
        number = pc.cast(pc.fill_null(digits, "0"), pa.int64()).to_numpy()
        clean_number = pc.match_substring_regex(number_text, r"^\d+$").to_numpy(zero_copy_only=False)

        # Standardise each distinct street once; rows carry the index of their street.
        joined = pc.binary_join_element_wise(
            text["pre_dir"], text["street_name"], text["street_type"], text["post_dir"], "\x1f")
        street_codes, street_uniques = _dictionary(joined)
        street = match_keys(street_uniques, "\x1f")
        zip_codes, zip_uniques = _dictionary(pc.utf8_slice_codeunits(text["zip5"], 0, 5))
        state_codes, state_uniques = _dictionary(_state_postal(text["state"]))
        queries = Queries(number, has_number, street_codes, street, zip_codes, zip_uniques,
                          state_codes, state_uniques)
        outcome = Outcome.empty(len(number))
        self._fast_path(queries, outcome)
        candidate_search(self, queries, outcome)
        return self._results(text, number, clean_number, outcome)

    def _fast_path(self, q: Queries, outcome: Outcome) -> None:
        """Exact full street key + ZIP for every row with a number, vectorised."""
        if len(q.street) == 0:
            return
        street_key = q.street[:, 0]
        odd = q.number % 2 == 1
        for parity, mask in ((PARITY_ODD, odd), (PARITY_EVEN, ~odd)):
            todo = np.flatnonzero(q.has_number & mask)
            if len(todo) == 0:
                continue
            level = self._level("key_full", "zip", parity)
            code = _group_codes(level, street_key, q.street_codes[todo], q.zip_uniques,
                                q.zip_codes[todo])
            found_row, count = self._candidates(level, code, q.number[todo])
            hit = count > 0
            outcome.settle(todo[hit], found_row[hit], count[hit] >= 2, "exact", 1.0,
                           self._is_alt)

    def _results(self, text: dict, number: np.ndarray, clean_number: np.ndarray,
                 outcome: Outcome) -> pd.DataFrame:
        n_rows = len(number)
        matched_mask = outcome.status == 1
        matched = np.flatnonzero(matched_mask)
        match_rows = np.where(matched_mask, outcome.row, -1)
        take = pa.array(match_rows, mask=match_rows < 0)  # null index -> null value
        status = pc.take(pa.array(["no_match", "match", "tie"]), pa.array(outcome.status))
        exact = ((outcome.method == 0) & clean_number).astype(np.int8)
        match_type = pc.take(pa.array(["non_exact", "exact"]), pa.array(exact, mask=~matched_mask))
        score = np.where(clean_number, outcome.score, outcome.score * 0.98)
        lon = np.full(n_rows, np.nan)
        lat = np.full(n_rows, np.nan)
        if len(matched):
            rows = outcome.row[matched]
            lon[matched], lat[matched] = self.geometry.interpolate(
                self._geom[rows], self._from[rows], self._to[rows], self._is_left[rows], number[matched])
        r = self._arrow_ranges
        state = _state_postal(text["state"])
        postal = pc.take(r["state_postal"], take)
        state = pc.if_else(pc.equal(state, ""), postal, state)
        matched_address = pc.binary_join_element_wise(
            pc.binary_join_element_wise(text["house_number"], pc.take(r["std_fullname"], take), " "),
            pc.utf8_upper(text["city"]), state, pc.take(r["zip"], take), ", ")
        columns = {
            "address_key": text["address_key"],
            "status": status,
            "match_type": match_type,
            "match_method": pc.take(pa.array(METHODS), pa.array(outcome.method, mask=~matched_mask)),
            "match_score": pa.array(score.astype(np.float32), mask=~matched_mask),
            "reason": pc.take(pa.array(REASONS), pa.array(outcome.reason, mask=outcome.reason < 0)),
            "matched_address": matched_address,
            "lon": pa.array(lon, mask=~matched_mask), "lat": pa.array(lat, mask=~matched_mask),
            "tiger_line_id": pc.take(r["tlid"], take),
            "side": pc.take(r["side"], take),
        }
        for column in _GEO_COLUMNS:
            columns[column] = pc.take(r[column], take)
        columns["backend"] = pc.fill_null(pa.nulls(n_rows, pa.string()), "tiger")
        table = pa.Table.from_pydict(columns)
        return schema.conform(table, schema.GEOCODES).to_pandas(types_mapper=_INT64_AS_NULLABLE.get)

    @property
    def _arrow_ranges(self) -> dict[str, pa.Array]:
        """Range-table columns as Arrow arrays for take(); empty codes become nulls."""
        cached = getattr(self, "_arrow_columns", None)
        if cached is None:
            r = self.ranges
            cached = {"tlid": pa.array(r["tlid"].to_numpy(np.int64)),
                      "side": pa.array(r["side"].to_numpy(str)),
                      "std_fullname": pa.array(r["std_fullname"].to_numpy(object), pa.string()),
                      "zip": pa.array(r["zip"].to_numpy(object), pa.string()),
                      "state_postal": pa.array(r["state_fips"].map(STATE_POSTAL).fillna("").to_numpy(object),
                                               pa.string())}
            for column in _GEO_COLUMNS:
                values = pa.array(r[column].to_numpy(object), pa.string())
                cached[column] = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
            self._arrow_columns = cached
        return cached


_GEO_COLUMNS = ("state_fips", "county_fips", "tract", "block_group", "block",
                "congressional_district", "state_senate_district", "state_house_district")
_INT64_AS_NULLABLE = {pa.int64(): pd.Int64Dtype()}


def _arrow_text(frame: pd.DataFrame, column: str) -> pa.Array:
    """A column as a null-free, trimmed Arrow string array ('' when absent)."""
    if column not in frame.columns:
        return pa.array(np.full(len(frame), ""), pa.string())
    values = frame[column]
    try:
        array = pa.array(values, pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array(values.astype(object).where(values.notna(), None).map(
            lambda v: None if v is None else str(v)), pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return pc.utf8_trim_whitespace(pc.fill_null(array, ""))


@contextmanager
def _cyclic_gc_paused():
    """No cyclic garbage collection during one batch: the candidate search makes tens of thousands
    of short-lived containers, and the full collections they set off walk the whole heap (a fifth
    of a noisy batch's time). Reference counting still frees them; collection resumes after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:  # a concurrent batch that found it off leaves it to the first one
            gc.enable()


def _state_postal(state: pa.Array) -> pa.Array:
    """Upper-case postal codes; a two-digit FIPS code is turned into its postal code."""
    upper = pc.utf8_upper(state)
    as_fips = pa.array([STATE_POSTAL.get(v, v) for v in upper.to_pylist()], pa.string()) \
        if pc.any(pc.match_substring_regex(upper, r"^\d\d$")).as_py() else upper
    return as_fips


def _dictionary(values: pa.Array) -> tuple[np.ndarray, list[str]]:
    """(code per row, distinct values) of a string array."""
    encoded = pc.dictionary_encode(values)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


def _group_codes(level: _LevelIndex, street_key: np.ndarray, street_code: np.ndarray,
                 zip_uniques: list[str] | None, zip_code: np.ndarray | None) -> np.ndarray:
    """The level's group code of each query, computing group strings only for distinct pairs."""
    blank = (street_key == "")[street_code]  # a street with nothing left at this level
    if zip_code is None:
        per_street = level.groups.get_indexer(street_key)
        return np.where(blank, -1, per_street[street_code])
    pair = street_code * (len(zip_uniques) + 1) + zip_code
    distinct, inverse = np.unique(pair, return_inverse=True)
    s_idx, z_idx = distinct // (len(zip_uniques) + 1), distinct % (len(zip_uniques) + 1)
    zips = np.asarray(zip_uniques, dtype=object)
    text = [f"{street_key[s]}|{zips[z]}" for s, z in zip(s_idx, z_idx)]
    return np.where(blank, -1, level.groups.get_indexer(text)[inverse])
