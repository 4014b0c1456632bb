"""The TIGER engine's candidate search, one rule at a time: what it accepts, how it says so
(match_method, match_score), and what it refuses (ties, no_match with a reason)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from voterpipe.geocode.tiger import TigerGeocoder, import_tiger_dir
from voterpipe.geocode import tiger_spelling
from voterpipe.geocode.tiger_spelling import NearNames, edit_distance, one_edit_apart, phonetic_key
from voterpipe.synth.county import CountyNetwork, CountySpec, build_county
from voterpipe.synth.tiger_files import write_tiger_files

SPEC = CountySpec("37", "183", "92", "WAKE", 27601, ("RALEIGH", "CARY"), (-78.70, 35.70))
INPUT_COLUMNS = ["address_key", "house_number", "pre_dir", "street_name", "street_type", "post_dir",
                 "zip5", "city", "state"]


def _renamed(edge: pd.Series, tlid: int, name: str, street_type: str, shift: int) -> pd.Series:
    """A copy of `edge` under another name and TLID, its ranges moved up by `shift`."""
    copy = edge.copy()
    copy["TLID"], copy["street_name"], copy["street_type"], copy["pre_dir"] = tlid, name, street_type, ""
    copy["FULLNAME"] = f"{name} {street_type}".strip()
    for column in ("LFROMHN", "LTOHN", "RFROMHN", "RTOHN"):
        copy[column] = int(edge[column]) + shift
    copy[["y0", "y1"]] = edge[["y0", "y1"]] + 0.02
    return copy


@pytest.fixture(scope="module")
def network() -> CountyNetwork:
    base = build_county(SPEC, 3000, seed=11)
    edges = base.edges
    maple = edges[(edges["street_name"] == "MAPLE") & (edges["PARITYL"] == "O")].iloc[0]
    extra = [
        _renamed(maple, 790_000_001, "MAPLE", "CT", 5000),   # a second MAPLE in the same ZIP
        _renamed(maple, 790_000_002, "BARTON", "RD", 0),     # BARTON and BURTON: one letter apart
        _renamed(maple, 790_000_003, "BURTON", "RD", 0),
        _renamed(maple, 790_000_004, "WINTERBOURNE", "DR", 0),  # a long name
    ]
    # PRESTON in one ZIP, PRESTIN (one letter away) only in another.
    inside = edges[(edges["ZIPL"] == edges["ZIPR"]) & (edges["PARITYL"] == "O")]
    first, second = inside.iloc[0], inside[inside["ZIPL"] != inside.iloc[0]["ZIPL"]].iloc[0]
    extra += [_renamed(first, 790_000_005, "PRESTON", "RD", 0),
              _renamed(second, 790_000_006, "PRESTIN", "RD", 0),
              _renamed(first, 790_000_007, "LANGSTON", "ST", 0),  # LANGSTON ST in one ZIP,
              _renamed(second, 790_000_008, "LANGSTON", "AVE", 0)]  # LANGSTON AVE in another
    return CountyNetwork(edges=pd.concat([edges, pd.DataFrame(extra)], ignore_index=True),
                         faces=base.faces, buildings=base.buildings)


@pytest.fixture(scope="module")
def engine(network, tmp_path_factory) -> TigerGeocoder:
    base = tmp_path_factory.mktemp("matching")
    write_tiger_files(network, base / "files")
    import_tiger_dir(base / "files", root=base / "data")
    return TigerGeocoder.load(base / "data" / "cache" / "tiger")


def edge_named(network, name: str, pre_dir: str = "", parity: str = "O") -> pd.Series:
    """An edge of that street (one within a single ZIP when there is one)."""
    edges = network.edges
    named = edges[(edges["street_name"] == name) & (edges["pre_dir"] == pre_dir)
                  & (edges["PARITYL"] == parity) & (edges["TLID"] < 790_000_000)]
    inside = named[named["ZIPL"] == named["ZIPR"]]
    return (inside if len(inside) else named).iloc[0]


def geocode(engine, network, *cases: tuple[pd.Series, dict]) -> pd.DataFrame:
    rows = []
    for n, (edge, changes) in enumerate(cases):
        row = {"address_key": f"k{n}", "house_number": str(int(edge["LFROMHN"]) + 2),
               "pre_dir": edge["pre_dir"], "street_name": edge["street_name"],
               "street_type": edge["street_type"], "post_dir": edge["post_dir"],
               "zip5": edge["ZIPL"], "city": "RALEIGH", "state": "NC"}
        rows.append({**row, **changes})
    return engine.geocode(pd.DataFrame(rows, columns=INPUT_COLUMNS))


def test_string_measures():
    assert one_edit_apart("MAPLE", "MAPEL") and one_edit_apart("MAPLE", "MAPL")
    assert not one_edit_apart("MAPLE", "MAPLE") and not one_edit_apart("MAPLE", "AMPEL")
    assert edit_distance("MARTIN LUTHER KING JR", "MARTIN LUTHR KNG JR", 2) == 2
    assert edit_distance("CHESTNUT", "CHSETNTU", 2) == 2  # two swaps
    assert edit_distance("CHESTNUT", "XCHSETNTU", 2) == 3  # beyond the limit reads limit + 1
    assert phonetic_key("MAPLE") == phonetic_key("MAPEL") != phonetic_key("WALNUT")


def test_exact_takes_the_fast_path_with_full_score(engine, network):
    out = geocode(engine, network, (edge_named(network, "OAK"), {}))
    assert out.loc[0, ["status", "match_method", "match_type"]].tolist() == ["match", "exact", "exact"]
    assert out.loc[0, "match_score"] == 1.0 and pd.isna(out.loc[0, "reason"])


def test_one_letter_misspelling_matches_as_fuzzy_name(engine, network):
    chestnut = edge_named(network, "CHESTNUT")
    out = geocode(engine, network, (chestnut, {"street_name": "CHESNUT"}),
                  (chestnut, {"street_name": "CHETSNUT"}), (chestnut, {"street_name": "chestnutt"}))
    assert (out["status"] == "match").all() and (out["match_method"] == "fuzzy_name").all()
    assert (out["tiger_line_id"] == chestnut["TLID"]).all()
    assert (out["match_score"] < 1).all() and (out["match_type"] == "non_exact").all()


def test_two_letters_only_for_long_names(engine, network):
    hickory = edge_named(network, "HICKORY")  # 7 letters: one edit at most
    long_name = network.edges[network.edges["street_name"] == "WINTERBOURNE"].iloc[0]
    out = geocode(engine, network, (hickory, {"street_name": "HIKCORI"}),
                  (long_name, {"street_name": "WINTRBOURN"}))
    assert out.loc[0, ["status", "reason"]].tolist() == ["no_match", "street_not_found"]
    assert out.loc[1, ["status", "match_method"]].tolist() == ["match", "fuzzy_name"]
    assert out.loc[1, "tiger_line_id"] == long_name["TLID"]


def test_a_misspelling_close_to_two_streets_is_a_tie(engine, network):
    barton = network.edges[network.edges["street_name"] == "BARTON"].iloc[0]
    out = geocode(engine, network, (barton, {"street_name": "BORTON"}), (barton, {}))
    assert out.loc[0, ["status", "reason"]].tolist() == ["tie", "several_streets"]
    assert pd.isna(out.loc[0, "tiger_line_id"]) and pd.isna(out.loc[0, "lon"])
    assert out.loc[1, "status"] == "match"  # spelled right, it is unique


def test_a_name_that_exists_in_the_county_is_not_corrected_into_a_zip_street(engine, network):
    preston = network.edges[network.edges["street_name"] == "PRESTON"].iloc[0]
    prestin = network.edges[network.edges["street_name"] == "PRESTIN"].iloc[0]
    out = geocode(engine, network, (preston, {"zip5": prestin["ZIPL"]}),
                  (prestin, {"street_name": "PRESTAN"}))
    assert out.loc[0, ["match_method", "tiger_line_id"]].tolist() == ["zip_fallback", preston["TLID"]]
    # A real misspelling close to both: the delivered ZIP's street is preferred.
    assert out.loc[1, ["match_method", "tiger_line_id"]].tolist() == ["fuzzy_name", prestin["TLID"]]


def test_the_exact_name_in_the_county_beats_a_suffix_change_in_the_zip(engine, network):
    langston_st = network.edges[network.edges["TLID"] == 790_000_007].iloc[0]
    langston_ave = network.edges[network.edges["TLID"] == 790_000_008].iloc[0]
    out = geocode(engine, network, (langston_ave, {"zip5": langston_st["ZIPL"]}),
                  (langston_st, {"street_type": ""}),
                  (langston_ave, {"street_type": "", "zip5": langston_st["ZIPL"]}))
    assert out.loc[0, ["match_method", "tiger_line_id"]].tolist() == ["zip_fallback", 790_000_008]
    # Without a suffix, the ZIP's one LANGSTON is meant when it holds the number ...
    assert out.loc[1, ["match_method", "tiger_line_id"]].tolist() == ["no_suffix", 790_000_007]
    # ... and when it does not, the county has two LANGSTONs: which one cannot be known.
    assert out.loc[2, ["status", "reason"]].tolist() == ["tie", "several_streets"]


def test_numbers_in_names_are_never_corrected(engine, network):
    sixth = edge_named(network, "6TH")
    out = geocode(engine, network, (sixth, {"street_name": "5TH"}), (sixth, {"street_name": "6TJ"}))
    assert out["status"].tolist() == ["no_match", "no_match"]  # 6TJ: too short to correct
    assert out["reason"].tolist() == ["street_not_found"] * 2


def test_missing_or_wrong_suffix_only_when_the_name_is_unique_in_the_zip(engine, network):
    oak, maple = edge_named(network, "OAK"), edge_named(network, "MAPLE")
    out = geocode(engine, network, (oak, {"street_type": ""}), (oak, {"street_type": "CIR"}),
                  (maple, {"street_type": ""}), (maple, {"street_type": "RD"}))
    assert out.loc[:1, "match_method"].tolist() == ["no_suffix", "no_suffix"]
    assert (out.loc[:1, "tiger_line_id"] == oak["TLID"]).all()
    # MAPLE LN and MAPLE CT share the ZIP: which one is meant cannot be known.
    assert out.loc[2:, "status"].tolist() == ["tie", "tie"]
    assert out.loc[2:, "reason"].tolist() == ["several_streets"] * 2


def test_missing_extra_and_misplaced_directionals(engine, network):
    west_main, oak = edge_named(network, "MAIN", "W"), edge_named(network, "OAK")
    out = geocode(engine, network, (west_main, {"pre_dir": ""}),
                  (west_main, {"pre_dir": "", "post_dir": "W"}), (oak, {"pre_dir": "N"}))
    assert (out["status"] == "match").all() and (out["match_method"] == "directional").all()
    assert out["tiger_line_id"].tolist() == [west_main["TLID"]] * 2 + [oak["TLID"]]


def test_featnames_alternate_names_match_the_edge(engine, network):
    highway = network.edges[network.edges["street_name"] == "HIGHWAY 54"].iloc[0]
    out = geocode(engine, network, (highway, {"street_name": "NC HWY 54", "street_type": ""}),
                  (highway, {"street_name": "OLD RALEIGH", "street_type": "ROAD"}), (highway, {}))
    assert out["match_method"].tolist() == ["alt_name", "alt_name", "exact"]
    assert (out["tiger_line_id"] == highway["TLID"]).all()


def test_zip_fallback_to_the_county(engine, network):
    oak = edge_named(network, "OAK")
    other_zip = next(z for z in ("27601", "27602", "27603", "27604")
                     if z != oak["ZIPL"] and not ((network.edges["street_name"] == "OAK")
                                                  & (network.edges["ZIPL"] == z)).any())
    out = geocode(engine, network, (oak, {"zip5": other_zip}), (oak, {"zip5": ""}),
                  (oak, {"zip5": "99999"}))
    assert (out["status"] == "match").all() and (out["match_method"] == "zip_fallback").all()
    assert (out["tiger_line_id"] == oak["TLID"]).all() and (out["match_score"] < 1).all()


def test_refusals_carry_a_reason(engine, network):
    oak = edge_named(network, "OAK")
    top = int(network.edges[["LTOHN", "RTOHN"]].max().max())
    out = geocode(engine, network, (oak, {"house_number": str(top + 1000)}),
                  (oak, {"house_number": "7", "street_type": ""}),
                  (oak, {"street_name": "QUIXOTIC"}), (oak, {"house_number": "REAR"}))
    assert (out["status"] == "no_match").all() and out["match_method"].isna().all()
    assert out["reason"].tolist() == ["number_out_of_range", "number_out_of_range",
                                      "street_not_found", "no_house_number"]


def test_import_without_featnames_has_no_alternate_names(network, tmp_path):
    write_tiger_files(network, tmp_path / "files")
    (tmp_path / "files" / "tl_2024_37183_featnames.dbf").unlink()
    import_tiger_dir(tmp_path / "files", root=tmp_path / "data")
    engine = TigerGeocoder.load(tmp_path / "data" / "cache" / "tiger")
    highway = network.edges[network.edges["street_name"] == "HIGHWAY 54"].iloc[0]
    out = geocode(engine, network, (highway, {"street_name": "OLD RALEIGH", "street_type": "RD"}))
    assert out.loc[0, "status"] == "no_match"
    assert engine.vintage.startswith("engine2-")  # results of the old engine are not reused


def _alignment_distance(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook table (the reference for the kernel)."""
    table = [[i + j if i == 0 or j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                              table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
    return table[-1][-1]


def test_compiled_edit_distance_agrees_with_the_textbook_table():
    rng = random.Random(5)
    for _ in range(2000):
        a = "".join(rng.choice("ABC D1") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("ABC D1") for _ in range(rng.randint(0, 9)))
        for limit in (1, 2):
            assert edit_distance(a, b, limit) == min(_alignment_distance(a, b), limit + 1), (a, b)


IMPORTED = ["WINTERBOURNE", "CHESTNUT", "BARTON", "BURTON", "13TH", "HICKORY", "ML", "OAK"]
WRITTEN = ["WINTRBOURN", "CHESNUT", "CHETSNUT", "BORTON", "14TH", "HIKCORI", "MILLL", "OAKK",
           "CHESTNUT", "ZZZZZZ", "WINTERBOURNE X"]


def test_near_names_finds_one_and_two_edits_and_never_edits_digits():
    near = NearNames(IMPORTED)

    def found(written):
        return sorted((key, edits) for key, edits, _ in near.near(written))

    assert found("CHESNUT") == found("CHETSNUT") == [("CHESTNUT", 1)]
    assert found("WINTRBOURN") == [("WINTERBOURNE", 2)]  # a long name: two edits
    assert found("HIKCORI") == []  # HICKORY is 7 letters: one edit at most
    assert found("BORTON") == [("BARTON", 1), ("BURTON", 1)]
    assert found("14TH") == []  # 13TH is one edit away, but in its number
    assert found("MILLL") == [("ML", 1)]  # ML compared as it is written: MILL
    assert found("OAKK") == []  # OAK is too short to correct
    assert found("CHESTNUT") == []  # a name is not near itself


def test_near_names_in_one_batch_equal_one_at_a_time(monkeypatch):
    batch = NearNames(IMPORTED)
    batch.prepare(WRITTEN)
    expected = {w: sorted(NearNames(IMPORTED).near(w)) for w in WRITTEN}
    assert {w: sorted(batch.near(w)) for w in WRITTEN} == expected
    # Every variant hashing alike makes every imported spelling a candidate: the distance check
    # alone must then give the same answers (a hash collision can only add refused candidates).
    real = tiger_spelling._variants

    def colliding(*args):
        hashes, owner = real(*args)
        return np.zeros_like(hashes), owner

    monkeypatch.setattr(tiger_spelling, "_variants", colliding)
    assert {w: sorted(NearNames(IMPORTED).near(w)) for w in WRITTEN} == expected
