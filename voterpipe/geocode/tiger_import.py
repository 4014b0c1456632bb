"""Importing TIGER/Line ADDRFEAT, EDGES, FACES and FEATNAMES files into per-county range tables.

Each county becomes cache/tiger/<year>_<SSCCC>/: ranges.parquet (one row per street name, edge
side and range, with its face's census codes), vertices.parquet (edge geometry) and faces.parquet
(block -> districts, for joining Census answers offline).
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import shapefile

from voterpipe import storage
from voterpipe.geocode.tiger_names import KEY_COLUMNS, fullname_keys, street_rules_version

log = logging.getLogger("voterpipe.geocode")

IMPORT_VERSION = "2"  # 2: FEATNAMES alternate names, faces.parquet
FILE_PATTERN = re.compile(r"^tl_(\d{4})_(\d{5})_(addrfeat|edges|faces|featnames)\.(zip|shp|dbf)$", re.I)
PARITY_ODD, PARITY_EVEN, PARITY_BOTH = 1, 2, 3
RANGES_FILE, VERTICES_FILE, FACES_FILE = "ranges.parquet", "vertices.parquet", "faces.parquet"


class TigerImportError(ValueError):
    """A TIGER file that cannot be used; the message names the file and the reason."""


# -- reading TIGER/Line files -------------------------------------------------------------------
@dataclass
class ShapeTable:
    records: pd.DataFrame
    shapes: list | None  # point lists per record, or None when only the .dbf was read


def find_county_files(directory: Path) -> dict[tuple[str, str], dict[str, Path]]:
    """{(year, SSCCC): {'addrfeat'|'edges'|'faces'|'featnames': path}} for tl_YYYY_SSCCC_kind
    .zip/.shp/.dbf files."""
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


def alternate_names(featnames: pd.DataFrame | None, addrfeat: pd.DataFrame) -> pd.DataFrame:
    """(TLID, FULLNAME) of every FEATNAMES name of an addressed edge that ADDRFEAT does not carry:
    alternates (PAFLAG 'A') and primary names ADDRFEAT spells differently."""
    if featnames is None or len(featnames) == 0:
        return pd.DataFrame({"TLID": pd.Series([], dtype="Int64"), "FULLNAME": pd.Series([], dtype=object)})
    missing = {"TLID", "FULLNAME"} - set(featnames.columns)
    if missing:
        raise TigerImportError(f"FEATNAMES lacks fields {sorted(missing)}")
    names = pd.DataFrame({"TLID": pd.to_numeric(featnames["TLID"], errors="coerce").astype("Int64"),
                          "FULLNAME": _text(featnames["FULLNAME"])})
    known = pd.DataFrame({"TLID": pd.to_numeric(addrfeat["TLID"], errors="coerce").astype("Int64"),
                          "FULLNAME": _text(addrfeat["FULLNAME"])})
    names = names[names["TLID"].isin(known["TLID"]) & (names["FULLNAME"] != "")]
    names = names.merge(known.drop_duplicates(), how="left", indicator=True)
    return names[names["_merge"] == "left_only"][["TLID", "FULLNAME"]].drop_duplicates()


def _with_alternate_names(feat: pd.DataFrame, alternates: pd.DataFrame) -> pd.DataFrame:
    """ADDRFEAT records plus one copy of each record per alternate name of its edge."""
    feat = feat.assign(_geom=np.arange(len(feat)), name_kind="P")
    if len(alternates) == 0:
        return feat
    tlid = pd.to_numeric(feat["TLID"], errors="coerce").astype("Int64")
    copies = feat.drop(columns=["FULLNAME"]).assign(TLID=tlid).merge(alternates, on="TLID")
    return pd.concat([feat.assign(TLID=tlid), copies.assign(name_kind="A")], ignore_index=True)


def build_county_tables(addrfeat: ShapeTable, edges: pd.DataFrame | None, faces: pd.DataFrame | None,
                        state_fips: str, county_fips: str,
                        featnames: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The range table (one row per ADDRFEAT record or FEATNAMES alternate name, and side) and
    the edge vertices."""
    feat = addrfeat.records.reset_index(drop=True)
    if addrfeat.shapes is None:
        raise TigerImportError("ADDRFEAT needs its .shp geometry to interpolate points")
    missing = {"TLID", "FULLNAME", "LFROMHN", "LTOHN", "RFROMHN", "RTOHN"} - set(feat.columns)
    if missing:
        raise TigerImportError(f"ADDRFEAT lacks fields {sorted(missing)}")
    counts, vertices = _vertices(addrfeat.shapes, len(feat))
    feat = _with_alternate_names(feat, alternate_names(featnames, feat))
    tlid = pd.to_numeric(feat["TLID"], errors="coerce").astype("Int64")
    tfid = _face_ids(feat, tlid, edges)
    fullname = _text(feat["FULLNAME"])
    keys = fullname_keys(fullname)
    ranges = pd.concat([_side_ranges(feat, side, tlid, tfid[side], fullname, keys) for side in ("L", "R")],
                       ignore_index=True)
    ranges = _usable_ranges(ranges, counts)
    ranges = _with_face_codes(ranges, faces, state_fips, county_fips)
    used = np.unique(ranges["geom"].to_numpy())
    vertices = vertices[vertices["geom"].isin(used)].reset_index(drop=True)
    return ranges, vertices


def _vertices(shapes: list, records: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Vertex counts per record and the vertex table: one geometry per ADDRFEAT record
    (coincident records repeat the same edge)."""
    counts = np.fromiter((len(points) for points in shapes), dtype=np.int64, count=records)
    flat = [xy for points in shapes for xy in points]
    coords = np.asarray(flat, dtype=np.float64).reshape(-1, 2) if flat else np.zeros((0, 2))
    return counts, pd.DataFrame({"geom": np.repeat(np.arange(records, dtype=np.int32), counts),
                                 "x": coords[:, 0], "y": coords[:, 1]})


def _face_ids(feat: pd.DataFrame, tlid: pd.Series, edges: pd.DataFrame | None) -> dict[str, pd.Series]:
    """TFID per side; EDGES is authoritative (some ADDRFEAT layouts omit them)."""
    tfid = {side: pd.Series(pd.NA, index=feat.index, dtype="Int64") for side in ("L", "R")}
    for side in ("L", "R"):
        if f"TFID{side}" in feat.columns:
            tfid[side] = pd.to_numeric(feat[f"TFID{side}"], errors="coerce").astype("Int64")
    if edges is not None and {"TLID", "TFIDL", "TFIDR"} <= set(edges.columns):
        by_tlid = edges.assign(TLID=pd.to_numeric(edges["TLID"], errors="coerce")).drop_duplicates(
            "TLID").set_index("TLID")
        for side in ("L", "R"):
            from_edges = pd.to_numeric(tlid.map(by_tlid[f"TFID{side}"]), errors="coerce").astype("Int64")
            tfid[side] = from_edges.fillna(tfid[side])
    return tfid


def _side_ranges(feat: pd.DataFrame, side: str, tlid: pd.Series, tfid: pd.Series, fullname: pd.Series,
                 keys: pd.DataFrame) -> pd.DataFrame:
    frm, to = _house_number(feat[f"{side}FROMHN"]), _house_number(feat[f"{side}TOHN"])
    parity_text = _first_present(feat, f"PARITY{side}").str.upper()
    inferred = np.where((frm % 2 == 1) & (to % 2 == 1), PARITY_ODD,
                        np.where((frm % 2 == 0) & (to % 2 == 0), PARITY_EVEN, PARITY_BOTH))
    parity = np.select([parity_text == "O", parity_text == "E", parity_text == "B"],
                       [PARITY_ODD, PARITY_EVEN, PARITY_BOTH], inferred)
    return pd.DataFrame({
        "tlid": tlid, "side": side, "tfid": tfid,
        "zip": _first_present(feat, f"ZIP{side}"),
        "from_hn": frm, "to_hn": to, "parity": parity.astype(np.int8),
        "geom": feat["_geom"].to_numpy(np.int32), "fullname": fullname,
        "name_kind": feat["name_kind"].to_numpy(object),
    }).join(keys[KEY_COLUMNS])


def _usable_ranges(ranges: pd.DataFrame, counts: np.ndarray) -> pd.DataFrame:
    """Ranges with both ends, a street key and geometry; lo/hi; one row per distinct range."""
    has_geometry = counts[ranges["geom"].to_numpy()] > 0
    ranges = ranges[ranges["from_hn"].notna() & ranges["to_hn"].notna() & ranges["tlid"].notna()
                    & (ranges["key_full"] != "") & has_geometry]
    ranges = ranges.assign(
        from_hn=ranges["from_hn"].astype(np.int64), to_hn=ranges["to_hn"].astype(np.int64))
    ranges["lo"] = np.minimum(ranges["from_hn"], ranges["to_hn"])
    ranges["hi"] = np.maximum(ranges["from_hn"], ranges["to_hn"])
    # A primary name sorts before its alternates, so a name that is both stays primary.
    return ranges.sort_values("name_kind", ascending=False, kind="stable").drop_duplicates(
        ["key_full", "zip", "tlid", "side", "lo", "hi", "parity"])


def _with_face_codes(ranges: pd.DataFrame, faces: pd.DataFrame | None, state_fips: str,
                     county_fips: str) -> pd.DataFrame:
    """Census codes from FACES by face id, the county's own FIPS where FACES has none; sorted by
    street key, ZIP and low number for the search."""
    if faces is not None:
        ranges = ranges.merge(face_codes(faces), on="tfid", how="left")
    for column in ("state_fips", "county_fips", "tract", "block_group", "block",
                   "congressional_district", "state_senate_district", "state_house_district"):
        if column not in ranges.columns:
            ranges[column] = ""
        ranges[column] = _text(ranges[column])
    ranges.loc[ranges["state_fips"] == "", "state_fips"] = state_fips
    ranges.loc[ranges["county_fips"] == "", "county_fips"] = county_fips
    return ranges.sort_values(["key_full", "zip", "lo"], kind="stable").reset_index(drop=True)


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
        featnames = read_tiger_file(files["featnames"], geometry=False).records \
            if "featnames" in files else None
        if faces is None:
            log.warning("TIGER %s %s: no FACES file, geographies will be empty", year, county)
        try:
            ranges, vertices = build_county_tables(addrfeat, edges, faces, county[:2], county[2:],
                                                   featnames)
        except TigerImportError as exc:
            raise TigerImportError(f"{files['addrfeat']}: {exc}") from exc
        sources = {kind: {"file": path.name, "sha256": storage.file_sha256(path)}
                   for kind, path in sorted(files.items())}
        manifest = {
            "tiger_year": year, "county": county, "import_version": IMPORT_VERSION,
            "street_rules_version": street_rules_version(),
            "sources": sources, "addrfeat_records": len(addrfeat.records), "ranges": len(ranges),
            "vertices": len(vertices), "faces": 0 if faces is None else len(faces),
            "edges": 0 if edges is None else len(edges),
            "alternate_name_ranges": int((ranges["name_kind"] == "A").sum()),
        }
        with storage.publish_dir(target_root / f"{year}_{county}") as staging:
            storage.write_parquet(pa.Table.from_pandas(ranges, preserve_index=False), staging / RANGES_FILE)
            storage.write_parquet(pa.Table.from_pandas(vertices, preserve_index=False), staging / VERTICES_FILE)
            if faces is not None:
                block_faces = face_codes(faces).drop(columns=["tfid"]).drop_duplicates()
                storage.write_parquet(pa.Table.from_pandas(block_faces, preserve_index=False),
                                      staging / FACES_FILE)
            storage.write_manifest(staging, manifest)
        log.info("TIGER %s %s: %d ranges from %d ADDRFEAT records", year, county, len(ranges),
                 len(addrfeat.records))
        summary["counties"].append(county)
        summary["ranges"] += len(ranges)
    return summary
