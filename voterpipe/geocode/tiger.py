"""The offline TIGER/Line geocoder: import ADDRFEAT/EDGES/FACES into a range table, then match.

Matching is vectorised: street key + ZIP + parity + house-number range via searchsorted, the point
is interpolated along the edge (FROMHN at the start vertex) and moved 10 m to the matched side,
and the geographies come from the face on that side (TFIDL/TFIDR -> FACES), with no polygon
operations. block_group is the one-digit BLKGRPCE code, like tract (6) and block (4).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapefile

from voterpipe import schema, storage
from voterpipe.geocode.tiger_names import KEY_COLUMNS, fullname_keys, street_keys, street_rules_version

log = logging.getLogger("voterpipe.geocode")

ENGINE_VERSION = "1"  # bump when matching or interpolation rules change: it keys the geocode cache
SIDE_OFFSET_METRES = 10.0
CANDIDATE_WINDOW = 4  # ranges checked below the searchsorted position; more go to the slow path
FILE_PATTERN = re.compile(r"^tl_(\d{4})_(\d{5})_(addrfeat|edges|faces)\.(zip|shp|dbf)$", re.I)
PARITY_ODD, PARITY_EVEN, PARITY_BOTH = 1, 2, 3
RANGES_FILE, VERTICES_FILE = "ranges.parquet", "vertices.parquet"
# (street key column, scope) tried in order; only the first is an exact match. Scope 'zip' needs
# the same ZIP; 'state' relaxes the ZIP within the input's state; 'any' (every imported county)
# only serves inputs that carry no state, so one state's addresses never tie with another's.
MATCH_LEVELS = tuple((key, scope) for key in ("key_full", "key_nodir", "key_base")
                     for scope in ("zip", "state", "any"))

STATE_POSTAL = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE",
    "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA",
    "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN",
    "28": "MS", "29": "MO", "30": "MT", "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM",
    "36": "NY", "37": "NC", "38": "ND", "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI",
    "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA",
    "54": "WV", "55": "WI", "56": "WY", "60": "AS", "66": "GU", "69": "MP", "72": "PR", "78": "VI",
}


class TigerImportError(ValueError):
    """A TIGER file that cannot be used; the message names the file and the reason."""


# -- reading TIGER/Line files -------------------------------------------------------------------
@dataclass
class ShapeTable:
    records: pd.DataFrame
    shapes: list | None  # point lists per record, or None when only the .dbf was read


def find_county_files(directory: Path) -> dict[tuple[str, str], dict[str, Path]]:
    """{(year, SSCCC): {'addrfeat'|'edges'|'faces': path}} for tl_YYYY_SSCCC_kind.zip/.shp/.dbf."""
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for path in sorted(Path(directory).rglob("*")):
        match = FILE_PATTERN.match(path.name)
        if not match or not path.is_file():
            continue
        year, county, kind, ext = match.group(1), match.group(2), match.group(3).lower(), match.group(4).lower()
        slot = found.setdefault((year, county), {})
        # Prefer a .shp (geometry) or .zip over a lone .dbf for the same file.
        if kind not in slot or ext in ("shp", "zip"):
            slot[kind] = path
    return found


def read_tiger_file(path: Path, geometry: bool = True) -> ShapeTable:
    """Read a TIGER/Line shapefile (.shp/.dbf, or the Census .zip) with Latin-1 text."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = {Path(n).suffix.lower(): n for n in archive.namelist()}
                if ".dbf" not in members:
                    raise TigerImportError(f"{path}: the zip holds no .dbf file")
                streams = {ext[1:]: io.BytesIO(archive.read(members[ext]))
                           for ext in (".shp", ".shx", ".dbf") if ext in members and (geometry or ext == ".dbf")}
            reader = shapefile.Reader(**streams, encoding="latin1")
        else:
            stem = path.with_suffix("")
            streams = {"dbf": open(stem.with_suffix(".dbf"), "rb")}
            if geometry and stem.with_suffix(".shp").exists():
                streams["shp"] = open(stem.with_suffix(".shp"), "rb")
                if stem.with_suffix(".shx").exists():
                    streams["shx"] = open(stem.with_suffix(".shx"), "rb")
            reader = shapefile.Reader(**streams, encoding="latin1")
    except (shapefile.ShapefileException, zipfile.BadZipFile, OSError) as exc:
        raise TigerImportError(f"{path}: cannot read TIGER file: {exc}") from exc
    with reader:
        names = [f[0] for f in reader.fields[1:]]
        records = pd.DataFrame([list(r) for r in reader.iterRecords()], columns=names)
        shapes = None
        if geometry and reader.shp is not None:
            shapes = [s.points for s in reader.iterShapes()]
            if len(shapes) != len(records):
                raise TigerImportError(f"{path}: {len(shapes)} shapes but {len(records)} records")
    return ShapeTable(records, shapes)


def _text(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


def _house_number(series: pd.Series) -> pd.Series:
    """The numeric part of a house number or range end (first run of digits); NaN if none."""
    digits = _text(series).str.extract(r"(\d+)", expand=False)
    return pd.to_numeric(digits, errors="coerce")


def _first_present(frame: pd.DataFrame, *names: str) -> pd.Series:
    for name in names:
        if name in frame.columns:
            return _text(frame[name])
    return pd.Series("", index=frame.index)


def face_codes(faces: pd.DataFrame) -> pd.DataFrame:
    """TFID -> state, county, tract, block group, block, CD, SLDU, SLDL from a FACES table."""
    columns = set(faces.columns)
    # Keep tract, block group and block from one vintage: 2020 blocks when present.
    suffix = "20" if "BLOCKCE20" in columns else ""
    cd_columns = sorted((c for c in columns if re.fullmatch(r"CD\d{3}FP", c)), reverse=True)
    return pd.DataFrame({
        "tfid": pd.to_numeric(faces["TFID"], errors="coerce").astype("Int64"),
        "state_fips": _first_present(faces, "STATEFP", f"STATEFP{suffix}", "STATEFP20"),
        "county_fips": _first_present(faces, "COUNTYFP", f"COUNTYFP{suffix}", "COUNTYFP20"),
        "tract": _first_present(faces, f"TRACTCE{suffix}", "TRACTCE"),
        "block_group": _first_present(faces, f"BLKGRPCE{suffix}", "BLKGRPCE"),
        "block": _first_present(faces, f"BLOCKCE{suffix}", "BLOCKCE"),
        "congressional_district": _first_present(faces, *cd_columns) if cd_columns else "",
        "state_senate_district": _first_present(faces, "SLDUST"),
        "state_house_district": _first_present(faces, "SLDLST"),
    }).dropna(subset=["tfid"]).drop_duplicates("tfid")


def build_county_tables(addrfeat: ShapeTable, edges: pd.DataFrame | None, faces: pd.DataFrame | None,
                        state_fips: str, county_fips: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The range table (one row per ADDRFEAT record and side) and its edge vertices."""
    feat = addrfeat.records.reset_index(drop=True)
    if addrfeat.shapes is None:
        raise TigerImportError("ADDRFEAT needs its .shp geometry to interpolate points")
    missing = {"TLID", "FULLNAME", "LFROMHN", "LTOHN", "RFROMHN", "RTOHN"} - set(feat.columns)
    if missing:
        raise TigerImportError(f"ADDRFEAT lacks fields {sorted(missing)}")

    # Vertices: one geometry per ADDRFEAT record (coincident records repeat the same edge).
    counts = np.fromiter((len(points) for points in addrfeat.shapes), dtype=np.int64, count=len(feat))
    flat = [xy for points in addrfeat.shapes for xy in points]
    coords = np.asarray(flat, dtype=np.float64).reshape(-1, 2) if flat else np.zeros((0, 2))
    vertices = pd.DataFrame({
        "geom": np.repeat(np.arange(len(feat), dtype=np.int32), counts),
        "x": coords[:, 0], "y": coords[:, 1]})

    tlid = pd.to_numeric(feat["TLID"], errors="coerce").astype("Int64")
    # TFIDs: EDGES is authoritative (some ADDRFEAT layouts omit them).
    tfid = {"L": pd.Series(pd.NA, index=feat.index, dtype="Int64"),
            "R": pd.Series(pd.NA, index=feat.index, dtype="Int64")}
    for side in ("L", "R"):
        if f"TFID{side}" in feat.columns:
            tfid[side] = pd.to_numeric(feat[f"TFID{side}"], errors="coerce").astype("Int64")
    if edges is not None and {"TLID", "TFIDL", "TFIDR"} <= set(edges.columns):
        by_tlid = edges.assign(TLID=pd.to_numeric(edges["TLID"], errors="coerce")).drop_duplicates(
            "TLID").set_index("TLID")
        for side in ("L", "R"):
            from_edges = pd.to_numeric(tlid.map(by_tlid[f"TFID{side}"]), errors="coerce").astype("Int64")
            tfid[side] = from_edges.fillna(tfid[side])

    fullname = _text(feat["FULLNAME"])
    keys = fullname_keys(fullname)

    sides = []
    for side in ("L", "R"):
        frm, to = _house_number(feat[f"{side}FROMHN"]), _house_number(feat[f"{side}TOHN"])
        parity_text = _first_present(feat, f"PARITY{side}").str.upper()
        inferred = np.where((frm % 2 == 1) & (to % 2 == 1), PARITY_ODD,
                            np.where((frm % 2 == 0) & (to % 2 == 0), PARITY_EVEN, PARITY_BOTH))
        parity = np.select([parity_text == "O", parity_text == "E", parity_text == "B"],
                           [PARITY_ODD, PARITY_EVEN, PARITY_BOTH], inferred)
        sides.append(pd.DataFrame({
            "tlid": tlid, "side": side, "tfid": tfid[side],
            "zip": _first_present(feat, f"ZIP{side}"),
            "from_hn": frm, "to_hn": to, "parity": parity.astype(np.int8),
            "geom": np.arange(len(feat), dtype=np.int32), "fullname": fullname,
        }).join(keys[KEY_COLUMNS]))
    ranges = pd.concat(sides, ignore_index=True)
    has_geometry = counts[ranges["geom"].to_numpy()] > 0
    ranges = ranges[ranges["from_hn"].notna() & ranges["to_hn"].notna() & ranges["tlid"].notna()
                    & (ranges["key_full"] != "") & has_geometry]
    ranges = ranges.assign(
        from_hn=ranges["from_hn"].astype(np.int64), to_hn=ranges["to_hn"].astype(np.int64))
    ranges["lo"] = np.minimum(ranges["from_hn"], ranges["to_hn"])
    ranges["hi"] = np.maximum(ranges["from_hn"], ranges["to_hn"])
    ranges = ranges.drop_duplicates(["key_full", "zip", "tlid", "side", "lo", "hi", "parity"])

    if faces is not None:
        ranges = ranges.merge(face_codes(faces), on="tfid", how="left")
    for column in ("state_fips", "county_fips", "tract", "block_group", "block",
                   "congressional_district", "state_senate_district", "state_house_district"):
        if column not in ranges.columns:
            ranges[column] = ""
        ranges[column] = _text(ranges[column])
    ranges.loc[ranges["state_fips"] == "", "state_fips"] = state_fips
    ranges.loc[ranges["county_fips"] == "", "county_fips"] = county_fips
    ranges = ranges.sort_values(["key_full", "zip", "lo"], kind="stable").reset_index(drop=True)
    used = np.unique(ranges["geom"].to_numpy())
    vertices = vertices[vertices["geom"].isin(used)].reset_index(drop=True)
    return ranges, vertices


def import_tiger_dir(directory: str | Path, root: Path | None = None) -> dict:
    """Import every county found in `directory` into storage.cache_dir('tiger'), atomically.

    Each county becomes cache/tiger/<year>_<SSCCC>/ (ranges.parquet sorted by street key + ZIP,
    vertices.parquet, manifest.json); re-importing a county replaces only that county.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TigerImportError(f"{directory}: not a directory")
    counties = find_county_files(directory)
    if not counties:
        raise TigerImportError(
            f"{directory}: no tl_YYYY_SSCCC_addrfeat/edges/faces .zip/.shp/.dbf files found")
    target_root = storage.cache_dir("tiger", root)
    summary = {"directory": str(target_root), "counties": [], "ranges": 0, "skipped": []}
    for (year, county), files in sorted(counties.items()):
        if "addrfeat" not in files:
            summary["skipped"].append({"county": county, "year": year, "reason": "no ADDRFEAT file"})
            log.warning("TIGER %s %s: no ADDRFEAT file, county skipped", year, county)
            continue
        addrfeat = read_tiger_file(files["addrfeat"])
        edges = read_tiger_file(files["edges"], geometry=False).records if "edges" in files else None
        faces = read_tiger_file(files["faces"], geometry=False).records if "faces" in files else None
        if faces is None:
            log.warning("TIGER %s %s: no FACES file, geographies will be empty", year, county)
        try:
            ranges, vertices = build_county_tables(addrfeat, edges, faces, county[:2], county[2:])
        except TigerImportError as exc:
            raise TigerImportError(f"{files['addrfeat']}: {exc}") from exc
        sources = {kind: {"file": path.name, "sha256": storage.file_sha256(path)}
                   for kind, path in sorted(files.items())}
        manifest = {
            "tiger_year": year, "county": county, "engine_version": ENGINE_VERSION,
            "street_rules_version": street_rules_version(),
            "sources": sources, "addrfeat_records": len(addrfeat.records), "ranges": len(ranges),
            "vertices": len(vertices), "faces": 0 if faces is None else len(faces),
            "edges": 0 if edges is None else len(edges),
        }
        with storage.publish_dir(target_root / f"{year}_{county}") as staging:
            storage.write_parquet(pa.Table.from_pandas(ranges, preserve_index=False), staging / RANGES_FILE)
            storage.write_parquet(pa.Table.from_pandas(vertices, preserve_index=False), staging / VERTICES_FILE)
            storage.write_manifest(staging, manifest)
        log.info("TIGER %s %s: %d ranges from %d ADDRFEAT records", year, county, len(ranges),
                 len(addrfeat.records))
        summary["counties"].append(county)
        summary["ranges"] += len(ranges)
    return summary


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
        self._prepare_geometry(vertices)
        r = self.ranges
        self._lo, self._hi = r["lo"].to_numpy(np.int64), r["hi"].to_numpy(np.int64)
        self._from, self._to = r["from_hn"].to_numpy(np.int64), r["to_hn"].to_numpy(np.int64)
        self._tlid = r["tlid"].to_numpy(np.int64)
        self._is_left = (r["side"] == "L").to_numpy()
        self._geom = r["geom"].to_numpy(np.int64)
        self._identity = self._tlid * 2 + self._is_left

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
        return cls(ranges, vertices, years, digest.hexdigest())

    def _prepare_geometry(self, vertices: pd.DataFrame) -> None:
        """Per-vertex cumulative length in metres, laid end to end so one searchsorted finds segments."""
        vertices = vertices.sort_values("geom", kind="stable")
        geom = vertices["geom"].to_numpy(np.int64)
        x, y = vertices["x"].to_numpy(np.float64), vertices["y"].to_numpy(np.float64)
        n_geom = int(geom.max()) + 1 if len(geom) else 0
        start = np.full(n_geom, -1, dtype=np.int64)
        count = np.bincount(geom, minlength=n_geom).astype(np.int64)
        first = np.r_[True, geom[1:] != geom[:-1]] if len(geom) else np.zeros(0, bool)
        start[geom[first]] = np.flatnonzero(first)
        metres_x = 111_320.0 * np.cos(np.radians(y))
        seg = np.zeros(len(x))
        if len(x) > 1:
            same = geom[1:] == geom[:-1]
            step = np.hypot(np.diff(x) * metres_x[1:], np.diff(y) * 110_540.0)
            seg[1:] = np.where(same, step, 0.0)
        cumulative = np.cumsum(seg)
        # Lay geometries end to end with a 1 m gap so positions of different edges never tie.
        geom_start_cum = np.zeros(n_geom)
        geom_start_cum[start >= 0] = cumulative[start[start >= 0]]
        local = cumulative - geom_start_cum[geom]
        length = np.zeros(n_geom)
        np.maximum.at(length, geom, local)
        base = np.r_[0.0, np.cumsum(length + 1.0)[:-1]]
        self._vx, self._vy = x, y
        self._g_start, self._g_count, self._g_length, self._g_base = start, count, length, base
        self._v_position = base[geom] + local

    def _level(self, key: str, scope: str, parity: int) -> _LevelIndex:
        cached = self._levels.get((key, scope, parity))
        if cached is not None:
            return cached
        r = self.ranges
        accepts = (r["parity"].to_numpy() == parity) | (r["parity"].to_numpy() == PARITY_BOTH)
        rows = np.flatnonzero(accepts)
        group_text = r[key].to_numpy(object)[rows]
        if scope != "any":
            qualifier = r["zip"] if scope == "zip" else r["state_fips"].map(STATE_POSTAL).fillna("")
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
        zip5, optionally city and state. Exact = full street name + ZIP; Non_Exact = the ZIP or
        the directions/type had to be relaxed, or the house number had letters or fractions.
        """
        n_rows = len(addresses)
        text = {c: _arrow_text(addresses, c) for c in (
            "address_key", "house_number", "pre_dir", "street_name", "street_type", "post_dir",
            "zip5", "city", "state")}
        number_text = text["house_number"]
        digits = pc.struct_field(pc.extract_regex(number_text, r"(?P<n>\d{1,9})"), [0])
        has_number = pc.is_valid(digits).to_numpy(zero_copy_only=False)
        number = pc.cast(pc.fill_null(digits, "0"), pa.int64()).to_numpy()
        clean_number = pc.match_substring_regex(number_text, r"^\d+$").to_numpy(zero_copy_only=False)
        zip5 = pc.utf8_slice_codeunits(text["zip5"], 0, 5)

        # Standardise each distinct street once; rows carry the index of their street.
        joined = pc.binary_join_element_wise(
            text["pre_dir"], text["street_name"], text["street_type"], text["post_dir"], "\x1f")
        street_codes, street_uniques = _dictionary(joined)
        parts = pd.DataFrame([u.split("\x1f") for u in street_uniques] or None,
                             columns=["pre_dir", "street_name", "street_type", "post_dir"])
        street = street_keys(parts) if len(parts) else parts
        qualifiers = {"zip": _dictionary(zip5), "state": _dictionary(_state_postal(text["state"]))}
        has_state = qualifiers["state"][0] != qualifiers["state"][1].index("") \
            if "" in qualifiers["state"][1] else np.ones(n_rows, dtype=bool)
        scope_rows = {"zip": np.ones(n_rows, dtype=bool), "state": has_state, "any": ~has_state}

        row = np.full(n_rows, -1, dtype=np.int64)
        outcome = np.zeros(n_rows, dtype=np.int8)  # 0 none, 1 match, 2 tie
        level_of = np.full(n_rows, -1, dtype=np.int8)
        pending = has_number.copy()
        odd = number % 2 == 1
        for level_no, (key, scope) in enumerate(MATCH_LEVELS):
            if not pending.any() or len(street) == 0:
                break
            street_key = street[key].to_numpy(object)
            for parity, mask in ((PARITY_ODD, odd), (PARITY_EVEN, ~odd)):
                todo = np.flatnonzero(pending & mask & scope_rows[scope])
                if len(todo) == 0:
                    continue
                level = self._level(key, scope, parity)
                codes, uniques = qualifiers.get(scope, (None, None))
                code = _group_codes(level, street_key, street_codes[todo], uniques,
                                    None if codes is None else codes[todo])
                found_row, count = self._candidates(level, code, number[todo])
                hit = count > 0
                done = todo[hit]
                row[done] = found_row[hit]
                outcome[done] = np.where(count[hit] >= 2, 2, 1)
                level_of[done] = level_no
                pending[done] = False
        return self._results(text, number, clean_number, row, outcome, level_of)

    def _interpolate(self, rows: np.ndarray, number: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PostGIS interpolate_from_address: fraction of length from FROMHN, 10 m to the side."""
        frm, to = self._from[rows], self._to[rows]
        width = np.maximum(np.abs(to - frm), 1)
        fraction = (number - np.minimum(frm, to)) / width
        fraction = np.where(frm > to, 1.0 - fraction, fraction)
        fraction = np.where((fraction < 0) | (fraction > 1), 0.5, fraction)
        geom = self._geom[rows]
        start, count = self._g_start[geom], self._g_count[geom]
        target = self._g_base[geom] + fraction * self._g_length[geom]
        k = np.searchsorted(self._v_position, target, side="right") - 1
        k = np.clip(k, start, start + np.maximum(count - 2, 0))
        k1 = np.minimum(k + 1, start + count - 1)
        x0, y0, x1, y1 = self._vx[k], self._vy[k], self._vx[k1], self._vy[k1]
        seg_len = self._v_position[k1] - self._v_position[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(seg_len > 0, (target - self._v_position[k]) / seg_len, 0.0)
        t = np.clip(t, 0.0, 1.0)
        lon, lat = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        metres_x = 111_320.0 * np.cos(np.radians(lat))
        dx_m, dy_m = (x1 - x0) * metres_x, (y1 - y0) * 110_540.0
        norm = np.hypot(dx_m, dy_m)
        sign = np.where(self._is_left[rows], 1.0, -1.0)  # left of travel = rotate +90 degrees
        with np.errstate(invalid="ignore", divide="ignore"):
            offset_lon = np.where(norm > 0, -dy_m / norm, 0.0) * SIDE_OFFSET_METRES * sign / metres_x
            offset_lat = np.where(norm > 0, dx_m / norm, 0.0) * SIDE_OFFSET_METRES * sign / 110_540.0
        return lon + offset_lon, lat + offset_lat

    def _results(self, text: dict, number, clean_number, row, outcome, level_of) -> pd.DataFrame:
        n_rows = len(row)
        matched = np.flatnonzero(outcome == 1)
        match_rows = np.where(outcome == 1, row, -1)
        take = pa.array(match_rows, mask=match_rows < 0)  # null index -> null value
        status = pc.take(pa.array(["no_match", "match", "tie"]), pa.array(outcome))
        exact = ((level_of == 0) & clean_number).astype(np.int8)
        match_type = pc.take(pa.array(["non_exact", "exact"]), pa.array(exact, mask=outcome != 1))
        lon = np.full(n_rows, np.nan)
        lat = np.full(n_rows, np.nan)
        if len(matched):
            lon[matched], lat[matched] = self._interpolate(row[matched], number[matched])
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
            "matched_address": matched_address,
            "lon": pa.array(lon, mask=outcome != 1), "lat": pa.array(lat, mask=outcome != 1),
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
