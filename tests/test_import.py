"""The streaming import of whole drops (every shipped layout) and the ImportSnapshot Luigi task."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import luigi
import pyarrow.parquet as pq
import pytest

from voterpipe import schema, storage
from voterpipe.catalog import stage as catalog_stage
from voterpipe.formats.importer import DropError, import_drop
from voterpipe.formats.layouts import LayoutError, load_layouts
from voterpipe.manifests import ImportManifest
from voterpipe.tasks.imports import ImportSnapshot, RawDrop

CANONICAL = catalog_stage("canonical")

SNAPSHOT = date(2026, 11, 1)
LAYOUTS = load_layouts()


def _line(columns, sep: str, quote: str = "", **values) -> str:
    return sep.join(f"{quote}{values.get(c, '')}{quote}" for c in columns)


def _write(path: Path, lines: list[str], encoding: str = "latin-1", newline: str = "\n", bom: bytes = b"") -> None:
    path.write_bytes(bom + (newline.join(lines) + newline).encode(encoding))


def nc_drop(directory: Path, variant: str = "current") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if variant == "pre2022":
        columns, quote, encoding, newline, bom = LAYOUTS["nc_pre2022"].voters.columns, '"', "utf-16-le", "\r\n", b"\xff\xfe"
    else:
        columns, quote, encoding, newline, bom = LAYOUTS["nc_current"].voters.columns, "", "latin-1", "\n", b""
        if variant == "2026":
            columns = columns + ("hava_id_req", "ssn", "no_dl_ssn_chkbx")
    rows = [
        dict(ncid="AA100", county_id="92", county_desc="WAKE", last_name="SMITH", first_name="ANN", status_cd="A",
             party_cd="DEM", gender_code="F", birth_year="1980", registr_dt="03/04/2010", zip_code="275130001",
             res_street_address="123  MAIN ST   #4B", res_city_desc="CARY", cong_dist_abbrv="02",
             nc_house_abbrv="036", ssn="123-45-6789"),
        dict(ncid="AA101", last_name="MU\x00NOZ", status_cd="I", party_cd="UNA", registr_dt="02/30/2019",
             zip_code="ABCDE", birth_year="1975", ssn="987-65-4321"),
        dict(ncid="AA102", last_name="PE\xd1A", status_cd="R", party_cd="NLB", registr_dt="##/##/####", zip_code="27513"),
        dict(ncid="", last_name="NOBODY", ssn="111-22-3333"),
    ]
    lines = ["\t".join(f"{quote}{c}{quote}" for c in columns)]
    lines += [_line(columns, "\t", quote, **r) for r in rows[:2]]
    lines.append(_line(columns[:20], "\t", quote, **rows[2]))  # cut short: wrong field count
    lines += [_line(columns, "\t", quote, **r) for r in rows[2:]]
    _write(directory / "ncvoter_Statewide.txt", lines, encoding, newline, bom)
    history = LAYOUTS["nc_current"].history.columns
    hist = [
        dict(ncid="AA100", election_lbl="11/08/2016", election_desc="11/08/2016 GENERAL",
             voting_method="ABSENTEE ONESTOP", voted_party_cd="DEM"),
        dict(ncid="AA100", election_lbl="03/03/2020", election_desc="03/03/2020 PRIMARY",
             voting_method="ELECTION DAY IN-PERSON", voted_party_cd="DEM"),
        dict(ncid="ZZ999", election_lbl="11/05/2024", election_desc="11/05/2024 GENERAL",
             voting_method="EARLY VOTING IN-PERSON", voted_party_cd="REP"),
    ]
    _write(directory / "ncvhis_Statewide.txt",
           ["\t".join(f"{quote}{c}{quote}" for c in history)] + [_line(history, "\t", quote, **h) for h in hist],
           encoding, newline, bom)
    (directory / "_READY").touch()  # the drop is complete (formats/drops.py)


def oh_drop(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    columns = LAYOUTS["oh_swvf"].voters.columns + ("PRIMARY-03/17/2020", "GENERAL-11/03/2020")
    rows = [dict(SOS_VOTERID="OH0000000001", COUNTY_NUMBER="25", LAST_NAME="DOE, JR", DATE_OF_BIRTH="1970-01-31",
                 REGISTRATION_DATE="1900-01-01", VOTER_STATUS="ACTIVE", PARTY_AFFILIATION="",
                 RESIDENTIAL_ADDRESS1="1 ELM ST", RESIDENTIAL_ZIP="43215", **{"PRIMARY-03/17/2020": "D",
                                                                              "GENERAL-11/03/2020": "X"}),
            dict(SOS_VOTERID="OH0000000002", COUNTY_NUMBER="25", DATE_OF_BIRTH="1800-01-01",
                 VOTER_STATUS="CONFIRMATION", PARTY_AFFILIATION="R", **{"GENERAL-11/03/2020": "X"})]
    lines = [",".join(columns)] + [",".join(f'"{r.get(c, "")}"' for c in columns) for r in rows]
    _write(directory / "SWVF_1_22.txt", lines)


def fl_drop(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    columns = LAYOUTS["fl_extract"].voters.columns
    voters = [dict(**{"County Code": "ALA", "Voter ID": "100000001", "Name Last": "ROE", "Birth Date": "*",
                      "Residence Zipcode": "32601", "Party Affiliation": "NPA", "Voter Status": "ACT"}),
              dict(**{"County Code": "ALA", "Voter ID": "100000002", "Birth Date": "07/04/1976",
                      "Residence Zipcode": "99999", "Party Affiliation": "LPF", "Voter Status": "INA"})]
    _write(directory / "ALA_20261101.txt", [_line(columns, "\t", **v) for v in voters])
    hcols = LAYOUTS["fl_extract"].history.columns
    hist = [{"County Code": "ALA", "Voter ID": "100000001", "Election Date": "11/05/2024", "Election Type": "GEN",
             "History Code": "E"},
            {"County Code": "ALA", "Voter ID": "100000002", "Election Date": "11/05/2024", "Election Type": "GEN",
             "History Code": "N"}]
    _write(directory / "ALA_H_20261101.txt", [_line(hcols, "\t", **h) for h in hist])


def _fixed(widths, **values) -> str:
    return "".join(str(values.get(name, "")).ljust(end - start)[: end - start] for name, start, end in widths)


def mi_fixed_drop(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    layout = LAYOUTS["mi_fixed"]
    voter = _fixed(layout.voters.widths, LAST_NAME="POE", VOTER_ID="0000000000123", YEAR_OF_BIRTH="1960",
                   REGISTRATION_DATE="01151990", STREET_NUMBER="42", STREET_NAME="MAPLE", ZIP="48823",
                   VOTER_STATUS_TYPE_CODE="A", GENDER="2", UOCAVA_STATUS="N")
    _write(directory / "entire_state_v.lst", [voter, voter[:300]])
    _write(directory / "entire_state_h.lst", [
        _fixed(layout.history.widths, VOTER_ID="0000000000123", ELECTION_CODE="0000000000042", ABSENTEE="Y"),
        _fixed(layout.history.widths, VOTER_ID="0000000000123", ELECTION_CODE="0000000000077", ABSENTEE="N")])
    _write(directory / "electionscd.lst", [
        _fixed(layout.aux["elections"].widths, CODE="0000000000042", DATE="11082016", TITLE="NOVEMBER GENERAL")])


def mi_csv_drop(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    layout = LAYOUTS["mi_csv"]
    _write(directory / "EntireStateVoters.csv", [",".join(layout.voters.columns), _line(
        layout.voters.columns, ",", VOTER_IDENTIFICATION_NUMBER="555", YEAR_OF_BIRTH="1990", GENDER="M",
        STREET_NUMBER="7", STREET_NAME="OAK", ZIP_CODE="48823", VOTER_STATUS_TYPE_CODE="V",
        REGISTRATION_DATE="05/06/2012", JURISDICTION_CODE="12345", WARD="1", PRECINCT="3")])
    _write(directory / "EntireStateVoterHistory.csv", [",".join(layout.history.columns), _line(
        layout.history.columns, ",", VOTER_IDENTIFICATION_NUMBER="555", ELECTION_DATE="11/05/2024",
        IS_ABSENTEE_VOTER="Y")])


def wa_drop(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    columns = LAYOUTS["wa_vrdb"].voters.columns + ("Birthyear",)
    _write(directory / "20261101_VRDB_Extract.txt", ["|".join(columns), _line(
        columns, "|", StateVoterID="WA000000001", Birthyear="1985", RegStNum="10", RegStName="PINE",
        RegZipCode="98101", StatusCode="Active", LegislativeDistrict="43", Registrationdate="01/02/2003")])
    _write(directory / "20261101_VotingHistoryExtract.txt", ["1|KI|KI|WA000000001|11/05/2024"])


DROPS = {"nc": nc_drop, "oh": oh_drop, "fl": fl_drop, "mi": mi_fixed_drop, "wa": wa_drop}


def _import(tmp_path: Path, state: str, make=None, **kwargs):
    raw, out = tmp_path / "raw", tmp_path / "out"
    (make or DROPS[state])(raw, **kwargs)
    out.mkdir()
    manifest = import_drop(raw, CANONICAL.files_in(out), state, SNAPSHOT, chunk_rows=2)
    tables = {name: pq.read_table(out / f"{name}.parquet") for name in ("voters", "history", "rejects")}
    return manifest, tables


def _check_counts(manifest: dict, tables: dict) -> None:
    for entry in manifest["files"]:
        assert entry["rows_read"] == entry["rows_loaded"] + entry["rows_rejected"] + entry["rows_skipped"]
        assert entry["rows_rejected"] == sum(entry["rejected_by_reason"].values())
        assert entry["rows_skipped"] == sum(entry["skipped_by_reason"].values())
        assert len(entry["sha256"]) == 64 and entry["size"] > 0
    totals = manifest["totals"]
    assert totals["rows_read"] == totals["rows_loaded"] + totals["rows_rejected"] + totals["rows_skipped"]
    assert tables["voters"].schema.equals(schema.VOTERS)
    assert tables["history"].schema.equals(schema.HISTORY)
    assert tables["rejects"].schema.equals(schema.REJECTS)
    assert tables["voters"].num_rows == totals["voters_loaded"]
    assert tables["history"].num_rows == totals["history_loaded"]
    assert tables["rejects"].num_rows == totals["rows_rejected"]


@pytest.mark.parametrize("variant", ["current", "2026", "pre2022"])
def test_nc_import_policy(tmp_path, variant):
    manifest, tables = _import(tmp_path, "nc", variant=variant)
    _check_counts(manifest, tables)
    voters = {r["voter_id"]: r for r in tables["voters"].to_pylist()}
    assert set(voters) == {"AA100", "AA101", "AA102"}
    ann = voters["AA100"]
    assert (ann["party"], ann["status"], ann["gender"], ann["birth_year"]) == ("DEM", "active", "F", 1980)
    assert (ann["res_zip5"], ann["res_zip4"], ann["registered_on"]) == ("27513", "0001", date(2010, 3, 4))
    # Districts in NC's canonical form (config/formats/nc_current.toml [canonical]): no leading zeros.
    assert ann["res_address_line"] == "123  MAIN ST   #4B" and ann["state_house_district"] == "36"
    assert ann["congressional_district"] == "2"
    assert ann["source_line"] == 2
    assert voters["AA101"]["last_name"] == "MUNOZ" and voters["AA101"]["registered_on"] is None
    assert voters["AA102"]["last_name"] == "PE\u00d1A" and voters["AA102"]["party"] == "OTH"
    assert voters["AA102"]["status"] == "removed" and voters["AA102"]["source_line"] == 5

    voter_file = manifest["files"][0]
    assert voter_file["layout"] == ("nc_pre2022" if variant == "pre2022" else "nc_current")
    assert voter_file["encoding"] == ("utf-16-le" if variant == "pre2022" else "latin-1")
    assert voter_file["rows_read"] == 5 and voter_file["rows_loaded"] == 3
    assert voter_file["rejected_by_reason"] == {"missing_voter_id": 1, "wrong_field_count": 1}
    assert voter_file["nul_bytes_stripped"] == 1
    assert voter_file["values_nulled"]["registered_on"] == {"bad_date": 1, "placeholder": 1}
    assert voter_file["values_nulled"]["res_zip5"] == {"bad_zip": 1}
    assert voter_file["values_repaired"]["state_house_district"] == {"zero_padded": 1}
    assert voter_file["values_repaired"]["congressional_district"] == {"zero_padded": 1}

    rejects = tables["rejects"].to_pylist()
    assert [(r["line_number"], r["reason"].split(":")[0]) for r in rejects] == [
        (4, "wrong_field_count"), (6, "missing_voter_id")]
    assert "NOBODY" in rejects[1]["raw_line"]
    # The SSN column is never loaded, not even into a rejected raw line.
    everything = str(tables["voters"].to_pylist()) + str(rejects)
    assert "6789" not in everything and "4321" not in everything and "3333" not in everything

    history = tables["history"].to_pylist()
    assert [(h["voter_id"], h["election_type"], h["voting_method"]) for h in history] == [
        ("AA100", "general", "early"), ("AA100", "primary", "in_person"), ("ZZ999", "general", "early")]
    assert history[0]["voting_method_raw"] == "ABSENTEE ONESTOP" and history[0]["election_date"] == date(2016, 11, 8)


def test_import_manifest_reads_back_typed_and_the_report_lists_exactly_its_files(tmp_path):
    from voterpipe.report import file_provenance

    raw = tmp_path / "raw"
    nc_drop(raw)
    (raw / "README.txt").write_text("not a voter file\n")
    body, _ = _import(tmp_path, "nc", make=lambda directory: None)
    manifest = ImportManifest.from_json({"stage": "ImportSnapshot", "fingerprint": {"value": "x"}, **body})
    assert manifest.to_json() == body  # the task's extra keys are ignored, nothing else is lost
    assert manifest.ignored_files == ["README.txt"]
    assert manifest.outputs == {"voters": "voters.parquet", "history": "history.parquet",
                                "rejects": "rejects.parquet"}
    by_name = {record.name: record for record in manifest.files}
    assert set(by_name) == {p.name for p in raw.iterdir()} - {"README.txt", "_READY"}
    for name, record in by_name.items():
        assert record.sha256 == storage.file_sha256(raw / name) and record.size == (raw / name).stat().st_size
    assert manifest.totals.rows_read == sum(r.rows_read for r in manifest.files)
    provenance = file_provenance(manifest).set_index("file")
    assert sorted(provenance.index) == sorted(by_name)
    for name, record in by_name.items():
        assert provenance.loc[name, "sha256"] == record.sha256
        assert provenance.loc[name, "rows_rejected"] == record.rows_rejected


def test_background_helpers_keep_order_and_raise_in_the_caller(tmp_path):
    import pyarrow as pa

    from voterpipe.formats.background import BackgroundWriter, prefetch

    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))
    stopped = prefetch(iter(range(10**6)))
    assert next(stopped) == 0
    stopped.close()  # stopping early ends the reading thread instead of hanging

    def broken():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetch(broken()))
    table_schema = pa.schema([("x", pa.int64())])
    writer = BackgroundWriter(tmp_path / "ok.parquet", table_schema)
    for start in range(0, 30, 10):
        writer.write_table(pa.table({"x": list(range(start, start + 10))}, schema=table_schema))
    writer.close()
    assert pq.read_table(tmp_path / "ok.parquet").column("x").to_pylist() == list(range(30))
    writer = BackgroundWriter(tmp_path / "bad.parquet", table_schema)
    writer.write_table(pa.table({"y": ["not the schema"]}))
    with pytest.raises(ValueError):
        writer.close()


def test_oh_wide_history_columns_become_long_rows(tmp_path):
    manifest, tables = _import(tmp_path, "oh")
    _check_counts(manifest, tables)
    voters = {r["voter_id"]: r for r in tables["voters"].to_pylist()}
    one, two = voters["OH0000000001"], voters["OH0000000002"]
    assert one["last_name"] == "DOE, JR" and one["party"] == "UNA" and one["registered_on"] is None
    assert one["birth_date"] == date(1970, 1, 31) and one["birth_year"] == 1970
    assert two["birth_date"] is None and two["status"] == "inactive" and two["party"] == "REP"
    history = [(h["voter_id"], h["election_date"], h["election_type"], h["party_ballot"], h["voting_method"])
               for h in tables["history"].to_pylist()]
    assert history == [
        ("OH0000000001", date(2020, 3, 17), "primary", "DEM", "unknown"),
        ("OH0000000001", date(2020, 11, 3), "general", None, "unknown"),
        ("OH0000000002", date(2020, 11, 3), "general", None, "unknown"),
    ]
    assert manifest["files"][0]["history_rows_from_wide_columns"] == 3
    assert manifest["files"][0]["values_nulled"]["birth_date"] == {"placeholder": 1}


def test_fl_headerless_extract_with_county_keyed_ids(tmp_path):
    manifest, tables = _import(tmp_path, "fl")
    _check_counts(manifest, tables)
    voters = {r["voter_id"]: r for r in tables["voters"].to_pylist()}
    assert set(voters) == {"ALA100000001", "ALA100000002"}
    assert voters["ALA100000001"]["party"] == "UNA" and voters["ALA100000001"]["birth_date"] is None
    assert voters["ALA100000001"]["res_state"] == "FL"
    assert voters["ALA100000002"]["res_zip5"] is None and voters["ALA100000002"]["party"] == "LIB"
    history = tables["history"].to_pylist()
    assert [(h["voter_id"], h["voting_method"]) for h in history] == [("ALA100000001", "early")]
    # "Did not vote" (History Code N) is skipped and counted apart from the rejects.
    assert tables["rejects"].num_rows == 0
    history_file = next(f for f in manifest["files"] if f["role"] == "history")
    assert history_file["rows_skipped"] == 1 and history_file["rows_rejected"] == 0
    assert history_file["skipped_by_reason"] == {"did_not_vote: History Code=N": 1}


def test_mi_fixed_width_with_election_code_file(tmp_path):
    manifest, tables = _import(tmp_path, "mi")
    _check_counts(manifest, tables)
    assert [e["role"] for e in manifest["files"]] == ["elections", "voters", "history"]
    voter = tables["voters"].to_pylist()[0]
    assert (voter["voter_id"], voter["gender"], voter["registered_on"]) == ("0000000000123", "F", date(1990, 1, 15))
    assert voter["res_house_number"] == "42" and voter["res_street_name"] == "MAPLE"
    assert tables["rejects"].to_pylist()[0]["reason"].startswith("wrong_line_length")
    history = tables["history"].to_pylist()
    assert (history[0]["election_date"], history[0]["election_type"], history[0]["voting_method"]) == (
        date(2016, 11, 8), "general", "absentee")
    assert history[1]["election_date"] is None  # code 77 is not in electionscd.lst
    assert manifest["files"][2]["values_nulled"]["election_date"] == {"unknown_lookup_key": 1}


def test_mi_csv_and_wa_layouts(tmp_path):
    manifest, tables = _import(tmp_path / "mi", "mi", make=mi_csv_drop)
    _check_counts(manifest, tables)
    voter = tables["voters"].to_pylist()[0]
    assert (voter["status"], voter["precinct"], voter["registered_on"]) == ("inactive", "12345-1-3", date(2012, 5, 6))
    assert tables["history"].to_pylist()[0]["voting_method"] == "absentee"

    manifest, tables = _import(tmp_path / "wa", "wa")
    _check_counts(manifest, tables)
    voter = tables["voters"].to_pylist()[0]
    assert (voter["status"], voter["birth_year"], voter["state_senate_district"]) == ("active", 1985, "43")
    assert manifest["files"][0]["delimiter"] == "|"
    assert manifest["files"][1]["header"] is False and tables["history"].num_rows == 1


def test_undecodable_and_nul_bytes_never_crash(tmp_path):
    def drop(raw: Path) -> None:
        nc_drop(raw)
        path = raw / "ncvoter_Statewide.txt"
        path.write_bytes(path.read_bytes().replace(b"SMITH", b"SM\x81\x00TH"))
    manifest, tables = _import(tmp_path, "nc", make=drop)
    entry = manifest["files"][0]
    assert entry["undecodable_bytes_replaced"] == 1 and entry["nul_bytes_stripped"] == 2
    assert "SM\ufffdTH" in [r["last_name"] for r in tables["voters"].to_pylist()]


def test_gzip_files_are_read(tmp_path):
    import gzip

    def drop(raw: Path) -> None:
        oh_drop(raw)
        plain = raw / "SWVF_1_22.txt"
        (raw / "SWVF_23_44.txt.gz").write_bytes(gzip.compress(plain.read_bytes().replace(b"OH00", b"OH99")))
    manifest, tables = _import(tmp_path, "oh", make=drop)
    assert tables["voters"].num_rows == 4 and tables["history"].num_rows == 6


def test_empty_drop_and_unknown_layout_are_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DropError, match="is empty"):
        import_drop(empty, CANONICAL.files_in(tmp_path), "nc", SNAPSHOT)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("hello\n")
    with pytest.raises(DropError, match="no voter file"):
        import_drop(stray, CANONICAL.files_in(tmp_path), "nc", SNAPSHOT)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ncvoter_Statewide.txt").write_text("id\tname\n1\tx\n")
    with pytest.raises(LayoutError, match=r"ncvoter_Statewide.txt matches no known layout.*'id\\tname'"):
        import_drop(bad, CANONICAL.files_in(tmp_path), "nc", SNAPSHOT)
    header_only = tmp_path / "header_only"
    header_only.mkdir()
    (header_only / "ncvoter_Statewide.txt").write_text("\t".join(LAYOUTS["nc_current"].voters.columns) + "\n")
    with pytest.raises(DropError, match="no data rows"):
        import_drop(header_only, CANONICAL.files_in(tmp_path), "nc", SNAPSHOT)


# ---- the Luigi task -----------------------------------------------------------------------------

def _canonical_bytes(root: Path) -> dict[str, bytes]:
    directory = storage.stage_dir("canonical", "nc", SNAPSHOT, root)
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(autouse=True)
def _dirty_drops_pass_the_gates(monkeypatch):
    """The drops here are dirty on purpose; the quality gates are tested in test_quality_gates.py."""
    monkeypatch.setitem(luigi.configuration.get_config()["quality"], "accept", "rejected_lines,column_nulled")


def test_luigi_import_runs_once_and_reruns_identically(data_root):
    nc_drop(storage.raw_dir("nc", SNAPSHOT, data_root))
    task = ImportSnapshot(state="nc", snapshot=SNAPSHOT)
    assert RawDrop(state="nc", snapshot=SNAPSHOT).complete()
    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    manifest = task.output().manifest()
    assert manifest["stage"] == "ImportSnapshot" and manifest["totals"]["voters_loaded"] == 3
    first = _canonical_bytes(data_root)
    assert set(first) == {"voters.parquet", "history.parquet", "rejects.parquet", "manifest.json"}

    mtime = task.output().file("voters.parquet").stat().st_mtime_ns
    result = luigi.build([ImportSnapshot(state="nc", snapshot=SNAPSHOT)], local_scheduler=True, detailed_summary=True)
    assert result.scheduling_succeeded
    assert task.output().file("voters.parquet").stat().st_mtime_ns == mtime  # complete: not run again

    # A forced rebuild writes the very same bytes.
    storage.shutil.rmtree(task.output().path)
    assert luigi.build([ImportSnapshot(state="nc", snapshot=SNAPSHOT)], local_scheduler=True)
    assert _canonical_bytes(data_root) == first


def test_missing_raw_drop_leaves_the_import_pending(data_root):
    task = ImportSnapshot(state="nc", snapshot=SNAPSHOT)
    assert not RawDrop(state="nc", snapshot=SNAPSHOT).complete()
    result = luigi.build([task], local_scheduler=True, detailed_summary=True)
    assert result.status == luigi.execution_summary.LuigiStatusCode.MISSING_EXT
    assert not task.complete()


def test_failed_import_leaves_nothing_complete(data_root):
    raw = storage.raw_dir("nc", SNAPSHOT, data_root)
    raw.mkdir(parents=True)
    (raw / "ncvoter_Statewide.txt").write_text("id\tname\n1\tx\n")
    (raw / "ncvhis_Statewide.txt").write_text("id\n1\n")
    (raw / "_READY").touch()  # a complete drop, so the import runs and fails on the bad header
    task = ImportSnapshot(state="nc", snapshot=SNAPSHOT)
    assert not luigi.build([task], local_scheduler=True)
    assert not task.complete()
    assert not task.output().path.exists()
    assert not any(task.output().path.parent.iterdir()) if task.output().path.parent.exists() else True


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from datetime import date
    import luigi
    import voterpipe.formats.loading as loading
    from voterpipe.tasks.imports import ImportSnapshot
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write: voters.parquet is half written
    loading.load_history = die
    luigi.build([ImportSnapshot(state="nc", snapshot=date(2026, 11, 1))], local_scheduler=True)
""")


def test_killed_import_leaves_nothing_complete_and_rerun_matches(data_root, tmp_path):
    nc_drop(storage.raw_dir("nc", SNAPSHOT, data_root))
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    task = ImportSnapshot(state="nc", snapshot=SNAPSHOT)
    assert not task.complete()
    leftovers = list(task.output().path.parent.iterdir())
    assert leftovers and all(p.name.startswith(".") for p in leftovers)  # only the staging dir

    assert luigi.build([task], local_scheduler=True)
    assert task.complete()
    assert not [p for p in task.output().path.parent.iterdir() if p.name.startswith(".")]  # swept
    rerun = _canonical_bytes(data_root)

    other_root = tmp_path / "other"
    out = other_root / "out"
    out.mkdir(parents=True)
    manifest = import_drop(storage.raw_dir("nc", SNAPSHOT, data_root), CANONICAL.files_in(out), "nc", SNAPSHOT,
                           chunk_rows=luigi.configuration.get_config().getint("voterpipe", "chunk_rows"))
    for name in ("voters.parquet", "history.parquet", "rejects.parquet"):
        assert (out / name).read_bytes() == rerun[name]
    assert manifest["totals"] == task.output().manifest()["totals"]
