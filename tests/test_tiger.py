"""The offline TIGER geocoder: synthetic TIGER files, import, matching, interpolation, geographies."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shapefile

from voterpipe.geocode.tiger import TigerGeocoder, TigerImportError, import_tiger_dir
from voterpipe.synth.county import CountyNetwork, CountySpec, build_county
from voterpipe.synth.tiger_files import write_tiger_files

SPEC = CountySpec("37", "183", "92", "WAKE", 27601, ("RALEIGH", "CARY"), (-78.70, 35.70))
INPUT_COLUMNS = ["address_key", "house_number", "pre_dir", "street_name", "street_type", "post_dir",
                 "zip5", "city", "state"]


@pytest.fixture(scope="module")
def network() -> CountyNetwork:
    return build_county(SPEC, 3000, seed=11)


@pytest.fixture(scope="module")
def engine(network, tmp_path_factory) -> TigerGeocoder:
    base = tmp_path_factory.mktemp("tiger")
    write_tiger_files(network, base / "files")
    summary = import_tiger_dir(base / "files", root=base / "data")
    assert summary["counties"] == ["37183"]
    return TigerGeocoder.load(base / "data" / "cache" / "tiger")


def _addresses(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in INPUT_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    frame["address_key"] = [f"k{i}" for i in range(len(frame))]
    return frame[INPUT_COLUMNS]


def _metres(lon_a, lat_a, lon_b, lat_b):
    return np.hypot((lon_a - lon_b) * 111_320 * np.cos(np.radians(lat_b)), (lat_a - lat_b) * 110_540)


def _edge_address(edge: pd.Series, number, **changes) -> dict:
    row = {"house_number": str(number), "pre_dir": edge["pre_dir"], "street_name": edge["street_name"],
           "street_type": edge["street_type"], "post_dir": edge["post_dir"], "zip5": edge["ZIPL"],
           "city": "RALEIGH", "state": "NC"}
    row.update(changes)
    return row


def test_tiger_files_round_trip_through_pyshp(network, tmp_path):
    paths = write_tiger_files(network, tmp_path)
    names = {p.name for p in paths}
    for kind in ("addrfeat", "edges", "faces"):
        for ext in (".shp", ".shx", ".dbf", ".prj"):
            assert f"tl_2024_37183_{kind}{ext}" in names
    with shapefile.Reader(str(tmp_path / "tl_2024_37183_addrfeat.shp")) as reader:
        fields = [f[0] for f in reader.fields[1:]]
        assert fields[:7] == ["TLID", "TFIDL", "TFIDR", "ARIDL", "ARIDR", "LINEARID", "FULLNAME"]
        assert {"LFROMHN", "LTOHN", "RFROMHN", "RTOHN", "ZIPL", "ZIPR", "PARITYL", "PARITYR",
                "EDGE_MTFCC", "ROAD_MTFCC"} <= set(fields)
        assert reader.shapeType == shapefile.POLYLINE
        assert len(reader) == len(network.edges)
        record, shape = reader.record(5), reader.shape(5)
        edge = network.edges.iloc[5]
        assert record["TLID"] == edge["TLID"] and record["FULLNAME"] == edge["FULLNAME"]
        assert record["LFROMHN"] == str(edge["LFROMHN"]) and record["PARITYR"] == edge["PARITYR"]
        assert shape.points[0] == pytest.approx([edge["x0"], edge["y0"]])
        assert shape.points[-1] == pytest.approx([edge["x1"], edge["y1"]])
    with shapefile.Reader(dbf=open(tmp_path / "tl_2024_37183_faces.dbf", "rb")) as reader:
        faces = pd.DataFrame([list(r) for r in reader.iterRecords()],
                             columns=[f[0] for f in reader.fields[1:]])
    expected = network.faces.set_index("TFID")
    faces = faces.set_index("TFID")
    assert len(faces) == len(expected)
    assert (faces["TRACTCE20"] == expected.loc[faces.index, "TRACTCE"]).all()
    assert (faces["BLOCKCE20"] == expected.loc[faces.index, "BLOCKCE"]).all()
    assert (faces["CD119FP"] == expected.loc[faces.index, "CD119FP"]).all()
    with shapefile.Reader(str(tmp_path / "tl_2024_37183_edges.shp")) as reader:
        assert {"STATEFP", "COUNTYFP", "TLID", "TFIDL", "TFIDR", "FULLNAME"} <= {f[0] for f in reader.fields}


def test_every_building_geocodes_to_its_edge_side_and_block(network, engine):
    buildings = network.buildings.assign(address_key=network.buildings["building_id"], state="NC")
    out = engine.geocode(buildings)
    assert len(out) == len(buildings) and list(out["address_key"]) == list(buildings["address_key"])
    assert (out["status"] == "match").mean() > 0.98
    assert (out["match_type"] == "exact").mean() > 0.98
    merged = out.merge(buildings, on="address_key", suffixes=("", "_true"))
    merged = merged[merged["status"] == "match"]
    distance = _metres(merged["lon"], merged["lat"], merged["lon_true"], merged["lat_true"])
    assert distance.max() < 30
    assert (merged["tiger_line_id"] == merged["tlid"]).all()
    assert (merged["side"] == merged["side_true"]).all()
    faces = network.faces.set_index("TFID").loc[merged["tfid"]]
    assert (merged["tract"].to_numpy() == faces["TRACTCE"].to_numpy()).all()
    assert (merged["block"].to_numpy() == faces["BLOCKCE"].to_numpy()).all()
    assert (merged["block_group"].to_numpy() == faces["BLKGRPCE"].to_numpy()).all()
    assert (merged["congressional_district"].to_numpy() == faces["CD119FP"].to_numpy()).all()
    assert (merged["state_house_district"].to_numpy() == faces["SLDLST"].to_numpy()).all()
    assert (merged["county_fips"] == "183").all() and (merged["backend"] == "tiger").all()
    first = merged.iloc[0]
    assert first["matched_address"].startswith(f"{first['house_number']} ")
    assert first["matched_address"].endswith(f", NC, {first['zip5']}")


def test_parity_picks_the_side_and_reversed_edges_interpolate_from_fromhn(network, engine):
    edges = network.edges
    reversed_edge = edges[edges["PARITYL"] == "E"].iloc[0]  # digitised against the numbering
    forward_edge = edges[edges["PARITYL"] == "O"].iloc[0]
    rows = []
    for edge in (reversed_edge, forward_edge):
        rows += [_edge_address(edge, edge["LFROMHN"]), _edge_address(edge, edge["LTOHN"]),
                 _edge_address(edge, edge["RFROMHN"], zip5=edge["ZIPR"])]
    out = engine.geocode(_addresses(rows))
    assert (out["status"] == "match").all()
    assert list(out["side"]) == ["L", "L", "R"] * 2
    assert list(out["tiger_line_id"]) == [reversed_edge["TLID"]] * 3 + [forward_edge["TLID"]] * 3
    for offset, edge in ((0, reversed_edge), (3, forward_edge)):
        at_from = _metres(out["lon"][offset], out["lat"][offset], edge["x0"], edge["y0"])
        at_to = _metres(out["lon"][offset + 1], out["lat"][offset + 1], edge["x1"], edge["y1"])
        assert at_from < 12 and at_to < 12  # ~10 m side offset from the vertex
    # Odd on the reversed edge's left: the number has the right side's parity.
    odd = _edge_address(reversed_edge, reversed_edge["RFROMHN"], zip5=reversed_edge["ZIPR"])
    assert int(reversed_edge["RFROMHN"]) % 2 == 1
    assert engine.geocode(_addresses([odd]))["side"].iloc[0] == "R"


def test_relaxed_matches_are_non_exact_and_misses_are_no_match(network, engine):
    edges = network.edges
    edge = edges[(edges["pre_dir"] == "W") & (edges["PARITYL"] == "O")].iloc[0]
    number = int(edge["LFROMHN"]) + 2
    out = engine.geocode(_addresses([
        _edge_address(edge, number),                                    # exact
        _edge_address(edge, number, zip5="99999"),                      # ZIP does not match
        _edge_address(edge, number, pre_dir=""),                        # direction missing
        _edge_address(edge, number, street_type="TERRACE"),             # wrong suffix
        _edge_address(edge, f"{number}A"),                              # letter suffix
        _edge_address(edge, f"{number} 1/2"),                           # fraction
        _edge_address(edge, number + 1000),                             # outside every range
        _edge_address(edge, number, street_name="NOWHERE"),             # unknown street
        _edge_address(edge, "ABC"),                                     # no number at all
        _edge_address(edge, number, street_name=edge["street_name"].lower(), street_type="Street"),
    ]))
    assert list(out["status"]) == ["match"] * 6 + ["no_match"] * 3 + ["match"]
    assert list(out["match_type"][:6]) == ["exact"] + ["non_exact"] * 5
    assert out["match_type"].iloc[9] == ("exact" if edge["street_type"] == "ST" else "non_exact")
    assert set(out["tiger_line_id"][:6]) == {edge["TLID"]}
    assert out["lon"][6:9].isna().all() and out["match_type"][6:9].isna().all()


def _with_extra_edges(network: CountyNetwork, extra: pd.DataFrame) -> CountyNetwork:
    return CountyNetwork(edges=pd.concat([network.edges, extra], ignore_index=True),
                         faces=network.faces, buildings=network.buildings)


def test_same_name_in_two_zips_and_ties(network, tmp_path):
    edges = network.edges
    original = edges[(edges["PARITYL"] == "O") & (edges["ZIPL"] == edges["ZIPR"])].iloc[0]
    elsewhere = original.copy()  # the same street name and range in another ZIP
    elsewhere["TLID"] = 700_000_001
    elsewhere[["y0", "y1"]] = original[["y0", "y1"]] + 0.05
    elsewhere["ZIPL"] = elsewhere["ZIPR"] = "27999"
    tie_street = edges[(edges["street_name"] != original["street_name"]) & (edges["PARITYL"] == "O")].iloc[0]
    tie_copy = tie_street.copy()  # a second edge with the same name, range and ZIP: a tie
    tie_copy["TLID"] = 700_000_003
    tie_copy[["x0", "x1"]] = tie_street[["x0", "x1"]] + 0.10
    write_tiger_files(_with_extra_edges(network, pd.DataFrame([elsewhere, tie_copy])), tmp_path / "files")
    import_tiger_dir(tmp_path / "files", root=tmp_path / "data")
    engine = TigerGeocoder.load(tmp_path / "data" / "cache" / "tiger")
    number = int(original["LFROMHN"])
    out = engine.geocode(_addresses([
        _edge_address(original, number),
        _edge_address(original, number, zip5="27999"),
        _edge_address(original, number, zip5="11111"),  # either ZIP could be meant
        _edge_address(tie_street, int(tie_street["LFROMHN"])),
    ]))
    assert list(out["status"]) == ["match", "match", "tie", "tie"]
    assert list(out["tiger_line_id"][:2]) == [original["TLID"], 700_000_001]
    assert list(out["match_type"][:2]) == ["exact", "exact"]
    assert out["lon"][2:].isna().all() and out["tiger_line_id"][2:].isna().all()


def test_import_reads_census_zip_files_and_tfids_from_edges(network, tmp_path):
    write_tiger_files(network, tmp_path / "shp")
    zipped = tmp_path / "zips"
    zipped.mkdir()
    for kind in ("addrfeat", "edges", "faces"):
        with zipfile.ZipFile(zipped / f"tl_2024_37183_{kind}.zip", "w") as archive:
            for path in (tmp_path / "shp").glob(f"tl_2024_37183_{kind}.*"):
                archive.write(path, path.name)
    summary = import_tiger_dir(zipped, root=tmp_path / "data")
    assert summary["counties"] == ["37183"] and summary["ranges"] == 2 * len(network.edges)
    engine = TigerGeocoder.load(tmp_path / "data" / "cache" / "tiger")
    sample = network.buildings.iloc[::50].assign(address_key=lambda f: f["building_id"])
    out = engine.geocode(sample)
    assert (out["status"] == "match").all()
    faces = network.faces.set_index("TFID").loc[sample["tfid"]]
    assert (out["block"].to_numpy() == faces["BLOCKCE"].to_numpy()).all()
    assert engine.benchmark == "TIGER2024" and engine.vintage.startswith("engine")


def test_import_errors_name_the_file(tmp_path):
    with pytest.raises(TigerImportError, match="no tl_YYYY_SSCCC"):
        import_tiger_dir(tmp_path)
    (tmp_path / "tl_2024_37183_addrfeat.zip").write_bytes(b"not a zip")
    with pytest.raises(TigerImportError, match="tl_2024_37183_addrfeat.zip"):
        import_tiger_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="voterpipe tiger import"):
        TigerGeocoder.load(tmp_path / "empty")


def test_relaxed_zip_stays_inside_the_input_state(network, tmp_path):
    other_state = CountySpec("45", "045", "23", "GREENVILLE", 29601, ("GREENVILLE", "TAYLORS"), (-82.4, 34.8))
    neighbour = build_county(other_state, 300, seed=2, tlid_base=800_000_000, tfid_base=400_000_000)
    write_tiger_files(network, tmp_path / "files")
    write_tiger_files(neighbour, tmp_path / "files")  # the same grid street names, in SC
    summary = import_tiger_dir(tmp_path / "files", root=tmp_path / "data")
    assert summary["counties"] == ["37183", "45045"]
    engine = TigerGeocoder.load(tmp_path / "data" / "cache" / "tiger")
    edge = network.edges[network.edges["PARITYL"] == "O"].iloc[0]
    assert (neighbour.edges["FULLNAME"] == edge["FULLNAME"]).any()
    number = int(edge["LFROMHN"])
    out = engine.geocode(_addresses([
        _edge_address(edge, number, zip5="11111"),                # NC: only the NC edge
        _edge_address(edge, number, zip5="11111", state="37"),    # a FIPS code works too
        _edge_address(edge, number, zip5="11111", state=""),      # no state: NC and SC tie
    ]))
    assert list(out["status"]) == ["match", "match", "tie"]
    assert list(out["tiger_line_id"][:2]) == [edge["TLID"]] * 2
    assert list(out["state_fips"][:2]) == ["37", "37"] and list(out["match_type"][:2]) == ["non_exact"] * 2


def test_keys_are_rebuilt_when_the_normaliser_rules_changed(network, tmp_path):
    from voterpipe import storage

    write_tiger_files(network, tmp_path / "files")
    import_tiger_dir(tmp_path / "files", root=tmp_path / "data")
    county_dir = tmp_path / "data" / "cache" / "tiger" / "2024_37183"
    manifest = storage.read_manifest(county_dir)
    assert manifest["street_rules_version"]
    stale = storage.read_parquet(county_dir / "ranges.parquet").to_pandas()
    stale[["key_full", "key_nodir", "key_base"]] = "STALE"
    storage.write_parquet(pa.Table.from_pandas(stale, preserve_index=False), county_dir / "ranges.parquet")
    before = TigerGeocoder.load(tmp_path / "data" / "cache" / "tiger")
    storage.write_manifest(county_dir, {**manifest, "street_rules_version": "0.0"})
    after = TigerGeocoder.load(tmp_path / "data" / "cache" / "tiger")
    sample = network.buildings.iloc[:20].assign(address_key=lambda f: f["building_id"])
    assert (before.geocode(sample)["status"] == "no_match").all()
    assert (after.geocode(sample)["status"] == "match").all()


@pytest.mark.parametrize("window", [1, 4])
def test_range_search_agrees_with_brute_force_on_overlapping_ranges(window, monkeypatch):
    monkeypatch.setattr("voterpipe.geocode.tiger.CANDIDATE_WINDOW", window)  # 1: mostly the slow path
    rng = np.random.default_rng(0)
    n = 400
    lo = rng.integers(1, 2000, n)
    hi = lo + rng.integers(0, 600, n)  # long ranges overlap many others
    reverse = rng.random(n) < 0.3
    ranges = pd.DataFrame({
        "tlid": np.arange(n) // 2 + 1000, "side": np.where(np.arange(n) % 2, "R", "L"),
        "tfid": 1, "zip": rng.choice(["27601", "27602"], n),
        "from_hn": np.where(reverse, hi, lo), "to_hn": np.where(reverse, lo, hi),
        "lo": lo, "hi": hi, "parity": rng.choice([1, 2, 3], n).astype(np.int8),
        "geom": np.arange(n) // 2, "fullname": "", "std_fullname": "",
        "state_fips": "37", "county_fips": "183", "tract": "", "block_group": "", "block": "",
        "congressional_district": "", "state_senate_district": "", "state_house_district": ""})
    street = rng.choice(["OAK", "ELM", "PINE"], n)
    ranges["std_fullname"] = street + " ST"
    ranges["key_full"], ranges["key_nodir"], ranges["key_base"] = street + " ST", street + " ST", street
    vertices = pd.DataFrame({"geom": np.repeat(np.arange(n // 2), 2), "x": np.tile([-78.0, -77.999], n // 2),
                             "y": np.repeat(np.linspace(35, 35.1, n // 2), 2)})
    engine = TigerGeocoder(ranges, vertices, ["2024"], "test")
    queries = pd.DataFrame({"house_number": rng.integers(1, 2700, 3000).astype(str),
                            "street_name": rng.choice(["OAK", "ELM", "PINE"], 3000), "street_type": "ST",
                            "zip5": rng.choice(["27601", "27602"], 3000), "state": "NC"})
    queries["address_key"] = queries.index.astype(str)
    out = engine.geocode(queries)
    key, zips, par = ranges["key_full"].to_numpy(str), ranges["zip"].to_numpy(str), ranges["parity"].to_numpy()
    tlids, sides_of = ranges["tlid"].to_numpy(), ranges["side"].to_numpy(str)
    for q, result in zip(queries.itertuples(), out.itertuples()):
        number = int(q.house_number)
        same = (key == q.street_name + " ST") & ((par == 3) | (par == (1 if number % 2 else 2))) \
            & (lo <= number) & (hi >= number)
        exact = same & (zips == q.zip5)
        hits = exact if exact.any() else same
        sides = set(zip(tlids[hits], sides_of[hits]))
        expected = "no_match" if not sides else "match" if len(sides) == 1 else "tie"
        assert result.status == expected, (q, sides)
        if expected == "match":
            assert (result.tiger_line_id, result.side) in sides
            assert result.match_type == ("exact" if exact.any() else "non_exact")


def test_featnames_alternates_are_written_imported_and_faces_kept(network, tmp_path):
    from voterpipe import storage
    from voterpipe.geocode.tiger_import import FACES_FILE
    from voterpipe.synth.tiger_files import alternate_names_of

    write_tiger_files(network, tmp_path / "files")
    with shapefile.Reader(dbf=open(tmp_path / "files" / "tl_2024_37183_featnames.dbf", "rb")) as reader:
        names = pd.DataFrame([list(r) for r in reader.iterRecords()],
                             columns=[f[0] for f in reader.fields[1:]])
    assert {"TLID", "FULLNAME", "LINEARID", "PAFLAG"} <= set(names.columns)
    primary = names[names["PAFLAG"] == "P"]
    assert len(primary) == len(network.edges)  # every edge's own name
    alternates = names[names["PAFLAG"] == "A"]
    expected = sum(len(alternate_names_of(n)) for n in network.edges["FULLNAME"])
    assert len(alternates) == expected > 0
    summary = import_tiger_dir(tmp_path / "files", root=tmp_path / "data")
    county = tmp_path / "data" / "cache" / "tiger" / "2024_37183"
    manifest = storage.read_manifest(county)
    assert manifest["sources"]["featnames"]["file"] == "tl_2024_37183_featnames.dbf"
    assert manifest["alternate_name_ranges"] > 0 and summary["ranges"] > 2 * len(network.edges)
    faces = storage.read_parquet(county / FACES_FILE).to_pandas()
    assert len(faces) == network.faces[["TRACTCE", "BLOCKCE"]].drop_duplicates().shape[0]
    assert {"tract", "block", "congressional_district", "state_senate_district"} <= set(faces.columns)
