"""Write a synthetic county network as TIGER/Line ADDRFEAT, EDGES and FACES shapefiles and the
FEATNAMES relationship file (every edge's primary name, plus alternate names for some streets).

File names and field names follow the real Census files (tl_2024_<SSCCC>_addrfeat.shp etc.), so
`voterpipe tiger import` reads synthetic and downloaded counties through the same code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapefile

from voterpipe.synth.county import CELL_DEGREES, CountyNetwork

TIGER_YEAR = 2024
# NAD83 geographic (EPSG 4269), as in every TIGER/Line .prj.
NAD83_PRJ = (
    'GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",'
    'SPHEROID["GRS_1980",6378137,298.257222101]],PRIMEM["Greenwich",0],'
    'UNIT["Degree",0.017453292519943295]]'
)

ADDRFEAT_FIELDS = [
    ("TLID", "N", 10), ("TFIDL", "N", 10), ("TFIDR", "N", 10), ("ARIDL", "C", 22), ("ARIDR", "C", 22),
    ("LINEARID", "C", 22), ("FULLNAME", "C", 100), ("LFROMHN", "C", 12), ("LTOHN", "C", 12),
    ("RFROMHN", "C", 12), ("RTOHN", "C", 12), ("ZIPL", "C", 5), ("ZIPR", "C", 5),
    ("EDGE_MTFCC", "C", 5), ("ROAD_MTFCC", "C", 5), ("PARITYL", "C", 1), ("PARITYR", "C", 1),
    ("PLUS4L", "C", 4), ("PLUS4R", "C", 4), ("LFROMTYP", "C", 1), ("LTOTYP", "C", 1),
    ("RFROMTYP", "C", 1), ("RTOTYP", "C", 1), ("OFFSETL", "C", 1), ("OFFSETR", "C", 1),
]
EDGES_FIELDS = [
    ("STATEFP", "C", 2), ("COUNTYFP", "C", 3), ("TLID", "N", 10), ("TFIDL", "N", 10), ("TFIDR", "N", 10),
    ("MTFCC", "C", 5), ("FULLNAME", "C", 100), ("SMID", "C", 22), ("LFROMADD", "C", 12),
    ("LTOADD", "C", 12), ("RFROMADD", "C", 12), ("RTOADD", "C", 12), ("ZIPL", "C", 5), ("ZIPR", "C", 5),
    ("FEATCAT", "C", 1), ("HYDROFLG", "C", 1), ("RAILFLG", "C", 1), ("ROADFLG", "C", 1),
    ("OLFFLG", "C", 1), ("PASSFLG", "C", 1), ("DIVROAD", "C", 1), ("EXTTYP", "C", 1), ("TTYP", "C", 1),
    ("DECKEDROAD", "C", 1), ("ARTPATH", "C", 1), ("PERSIST", "C", 1), ("GCSEFLG", "C", 1),
    ("OFFSETL", "C", 1), ("OFFSETR", "C", 1), ("TNIDF", "N", 10), ("TNIDT", "N", 10),
]
FACES_FIELDS = [
    ("TFID", "N", 10), ("STATEFP20", "C", 2), ("COUNTYFP20", "C", 3), ("TRACTCE20", "C", 6),
    ("BLKGRPCE20", "C", 1), ("BLOCKCE20", "C", 4), ("SUFFIX1CE", "C", 1), ("ZCTA5CE20", "C", 5),
    ("STATEFP", "C", 2), ("COUNTYFP", "C", 3), ("TRACTCE", "C", 6), ("BLKGRPCE", "C", 1),
    ("COUSUBFP", "C", 5), ("PLACEFP", "C", 5), ("CD119FP", "C", 2), ("SLDUST", "C", 3),
    ("SLDLST", "C", 3), ("LWFLAG", "C", 1), ("OFFSET", "C", 1), ("ATOTAL", "N", 14),
    ("INTPTLAT", "C", 11), ("INTPTLON", "C", 12),
]

FEATNAMES_FIELDS = [
    ("TLID", "N", 10), ("FULLNAME", "C", 100), ("NAME", "C", 100), ("PREDIRABRV", "C", 15),
    ("PRETYPABRV", "C", 50), ("PREQUALABR", "C", 15), ("SUFDIRABRV", "C", 15),
    ("SUFTYPABRV", "C", 50), ("SUFQUALABR", "C", 15), ("LINEARID", "C", 22), ("MTFCC", "C", 5),
    ("PAFLAG", "C", 1),
]
# Alternate names, as FEATNAMES lists them for real roads: route numbers and older names.
ALTERNATE_NAMES = {
    "HIGHWAY 54": ("NC Hwy 54", "Old Raleigh Rd"),
    "MARTIN LUTHER KING JR BLVD": ("MLK Jr Blvd",),
    "OLD US 1 HWY": ("Old Wake Forest Rd",),
    "CHURCH BLVD": ("Old Church Rd",),
    "MILL WAY": ("Mill Pond Rd",),
}
_DIRECTIONS = {"N", "S", "E", "W", "NE", "NW", "SE", "SW"}


def alternate_names_of(fullname: str) -> tuple[str, ...]:
    """The alternate FEATNAMES names the synthetic writer gives a street (FULLNAME, any
    directional ignored, as in ALTERNATE_NAMES)."""
    words = str(fullname).upper().split()
    while len(words) > 1 and words[0] in _DIRECTIONS:
        words = words[1:]
    return ALTERNATE_NAMES.get(" ".join(words), ())


def _write_featnames(edges: pd.DataFrame, path: Path, linear_ids: dict) -> None:
    """FEATNAMES is a .dbf-only relationship file: one row per name of each edge."""
    with open(path, "wb") as dbf:
        writer = shapefile.Writer(dbf=dbf, encoding="latin1")
        for name, kind, size in FEATNAMES_FIELDS:
            writer.field(name, kind, size, 0)
        for rec in edges.itertuples(index=False):
            names = [(rec.FULLNAME, "P"), *((alt, "A") for alt in alternate_names_of(rec.FULLNAME))]
            for fullname, flag in names:
                writer.record(int(rec.TLID), fullname, fullname, "", "", "", "", "", "",
                              linear_ids.get(rec.FULLNAME, ""), _road_mtfcc(rec.FULLNAME), flag)
        writer.close()


def _writer(path: Path, shape_type: int, fields: list[tuple]) -> shapefile.Writer:
    writer = shapefile.Writer(str(path), shapeType=shape_type, encoding="latin1")
    for name, kind, size in fields:
        writer.field(name, kind, size, 0)
    return writer


def _road_mtfcc(fullname: str) -> str:
    return "S1200" if any(word in fullname.split() for word in ("HIGHWAY", "HWY", "US")) else "S1400"


def _face_cells(network: CountyNetwork) -> pd.DataFrame:
    """Recover each face's grid cell from its TFID (faces are numbered row-major from (-1, -1))."""
    faces = network.faces
    side = int(round(np.sqrt(len(faces))))  # grid + 2 cells per axis
    tfid = faces["TFID"].to_numpy(np.int64)
    offset = tfid - tfid.min()
    i, j = offset // side - 1, offset % side - 1
    edges = network.edges
    lon0 = float(min(edges["x0"].min(), edges["x1"].min()))
    lat0 = float(min(edges["y0"].min(), edges["y1"].min()))
    return pd.DataFrame({"x": lon0 + i * CELL_DEGREES, "y": lat0 + j * CELL_DEGREES})


def write_tiger_files(network: CountyNetwork, out_dir: Path, year: int = TIGER_YEAR) -> list[Path]:
    """ADDRFEAT, EDGES (lines), FACES (polygons) and FEATNAMES (.dbf) for the network's county;
    returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    edges, faces = network.edges, network.faces
    county = f"{edges['STATEFP'].iloc[0]}{edges['COUNTYFP'].iloc[0]}"
    stem = out_dir / f"tl_{year}_{county}"
    written: list[Path] = []

    names = edges["FULLNAME"].astype(str)
    linear_ids = {name: f"1105{int(n):09d}" for n, name in enumerate(sorted(names.unique()))}
    addrfeat = _writer(Path(f"{stem}_addrfeat"), shapefile.POLYLINE, ADDRFEAT_FIELDS)
    edge_file = _writer(Path(f"{stem}_edges"), shapefile.POLYLINE, EDGES_FIELDS)
    for rec in edges.itertuples(index=False):
        line = [[[float(rec.x0), float(rec.y0)], [float(rec.x1), float(rec.y1)]]]
        mtfcc = _road_mtfcc(rec.FULLNAME)
        tlid = int(rec.TLID)
        addrfeat.line(line)
        addrfeat.record(
            tlid, int(rec.TFIDL), int(rec.TFIDR), f"400{tlid:019d}"[-22:], f"401{tlid:019d}"[-22:],
            linear_ids[rec.FULLNAME], rec.FULLNAME, str(rec.LFROMHN), str(rec.LTOHN),
            str(rec.RFROMHN), str(rec.RTOHN), rec.ZIPL, rec.ZIPR, mtfcc, mtfcc,
            rec.PARITYL, rec.PARITYR, "", "", "", "", "", "", "N", "N")
        edge_file.line(line)
        edge_file.record(
            rec.STATEFP, rec.COUNTYFP, tlid, int(rec.TFIDL), int(rec.TFIDR), mtfcc, rec.FULLNAME,
            f"{tlid % 10**9:09d}", str(rec.LFROMHN), str(rec.LTOHN), str(rec.RFROMHN), str(rec.RTOHN),
            rec.ZIPL, rec.ZIPR, "S", "N", "N", "Y", "N", "", "", "", "", "", "N", "", "", "N", "N",
            tlid % 10**9, tlid % 10**9 + 1)
    for writer, kind in ((addrfeat, "addrfeat"), (edge_file, "edges")):
        writer.close()
        written += [Path(f"{stem}_{kind}{ext}") for ext in (".shp", ".shx", ".dbf")]

    _write_featnames(edges, Path(f"{stem}_featnames.dbf"), linear_ids)
    written.append(Path(f"{stem}_featnames.dbf"))

    cells = _face_cells(network)
    face_file = _writer(Path(f"{stem}_faces"), shapefile.POLYGON, FACES_FIELDS)
    area = round((CELL_DEGREES * 111_000) ** 2)
    for rec, cell in zip(faces.itertuples(index=False), cells.itertuples(index=False)):
        x, y, d = float(cell.x), float(cell.y), CELL_DEGREES
        face_file.poly([[[x, y], [x, y + d], [x + d, y + d], [x + d, y], [x, y]]])  # clockwise ring
        face_file.record(
            int(rec.TFID), rec.STATEFP, rec.COUNTYFP, rec.TRACTCE, rec.BLKGRPCE, rec.BLOCKCE, "",
            rec.zip5, rec.STATEFP, rec.COUNTYFP, rec.TRACTCE, rec.BLKGRPCE, "90000", "",
            rec.CD119FP, rec.SLDUST, rec.SLDLST, "L", "N", area,
            f"{y + d / 2:+011.7f}", f"{x + d / 2:+012.7f}")
    face_file.close()
    written += [Path(f"{stem}_faces{ext}") for ext in (".shp", ".shx", ".dbf")]

    for kind in ("addrfeat", "edges", "faces"):
        prj = Path(f"{stem}_{kind}.prj")
        prj.write_text(NAD83_PRJ)
        written.append(prj)
    return written
