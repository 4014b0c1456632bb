"""The data-quality section's tables: quality gates, rejects (skipped non-records apart), values
nulled or repaired by column, address parse statuses, geocode statuses by county, source files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from voterpipe.quality import NOT_RECORDS
from voterpipe.report.markup import ReportTable
from voterpipe.report.sources import ReportSources

# Reason codes of lines the importer drops on purpose because they are not records (a Florida
# history line with code N = did not vote). Not errors.
SKIPPED_REASON_CODES = NOT_RECORDS
GEOCODE_STATUS_COLUMNS = ("match", "tie", "no_match", "not_sent")


def reason_code(reasons: pd.Series) -> pd.Series:
    return reasons.astype(str).str.split(":", n=1).str[0].str.strip()


def split_rejects(rejects: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rejected lines, skipped non-record lines) by file and reason."""
    skipped = reason_code(rejects["reason"]).isin(SKIPPED_REASON_CODES) if len(rejects) else \
        pd.Series(False, index=rejects.index)
    return rejects[~skipped].reset_index(drop=True), rejects[skipped].reset_index(drop=True)


def skipped_lines(sources: ReportSources) -> pd.DataFrame:
    """Lines skipped as not records, by file and reason: those the import manifest counts apart
    (each file's skipped_by_reason) and any an older import wrote among the rejects."""
    rows = [(record.get("name", ""), reason, int(count))
            for record in (sources.import_body or {}).get("files", []) or []
            for reason, count in (record.get("skipped_by_reason") or {}).items()]
    from_manifest = pd.DataFrame(rows, columns=["source_file", "reason", "rejected"])
    _, in_rejects = split_rejects(sources.rejects)
    parts = [p for p in (in_rejects[["source_file", "reason", "rejected"]], from_manifest) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else from_manifest


def rejects_tables(sources: ReportSources) -> list[ReportTable]:
    rejected, _ = split_rejects(sources.rejects)
    skipped = skipped_lines(sources)
    tables = []
    for slug, title, frame, caption in (
            ("20_quality_rejects", "Rejected lines by file and reason", rejected,
             "Lines that could not be loaded; each is kept with its file and line number in rejects.parquet."),
            ("21_quality_skipped", "Skipped lines (not records)", skipped,
             "Lines the layout declares are not records (for example a Florida history line with code N, "
             "'did not vote'). They are counted apart: they are not errors.")):
        data = frame.assign(reason_code=reason_code(frame["reason"]) if len(frame) else pd.Series(dtype=object))
        data = data[["source_file", "reason_code", "reason", "rejected"]].rename(columns={"rejected": "lines"})
        data = data.sort_values(["lines", "source_file", "reason"], ascending=[False, True, True])
        tables.append(ReportTable(slug, title, caption, data.reset_index(drop=True), formats={"lines": "count"},
                                  empty_text="None."))
    return tables


def value_fixes(import_body: dict) -> pd.DataFrame:
    """Values the import nulled or repaired, by file, column and reason, from each file record's
    values_nulled / values_repaired ({column: {reason: count}}) and its byte-level repairs."""
    rows = []
    for record in import_body.get("files", []) or []:
        name = record.get("name", "")
        for action in ("nulled", "repaired"):
            for column, reasons in (record.get(f"values_{action}") or {}).items():
                items = reasons.items() if isinstance(reasons, dict) else [("", reasons)]
                rows += [(name, action, column, reason, int(count)) for reason, count in items]
        for key in ("nul_bytes_stripped", "undecodable_bytes_replaced", "stray_cr_replaced"):
            if record.get(key):
                rows.append((name, "repaired", "(whole line)", key, int(record[key])))
    frame = pd.DataFrame(rows, columns=["source_file", "action", "column", "reason", "values"])
    return frame.sort_values(["action", "values"], ascending=[True, False]).reset_index(drop=True)


def fixes_table(sources: ReportSources) -> ReportTable:
    body = sources.import_body or sources.import_manifest.to_json()
    data = value_fixes(body)
    has_repaired = any("values_repaired" in (r or {}) for r in body.get("files", []) or [])
    caption = ("Values the import set to null (unparseable dates, placeholder values, codes outside the "
               "layout's list) or repaired, by file, column and kind. A repair recovers the value exactly: "
               "float = a whole number written as a float (27517.0), zero_padded = a code's padding set to the "
               "state's one form, leading_zero = a ZIP's lost leading 0, trailing_dash / empty_plus4 = a ZIP's "
               "empty +4; "
               "(whole line) = bytes fixed before parsing. Rows were loaded; only the value changed.")
    if not has_repaired:
        caption += " The import manifest records no per-column repairs (values_repaired), only nulls and byte-level fixes."
    return ReportTable("22_quality_values_nulled_repaired", "Values nulled and repaired by column",
                       caption, data, formats={"values": "count"}, empty_text="No value was nulled or repaired.")


def parse_status_table(sources: ReportSources) -> ReportTable:
    by_status = sources.geocode_manifest.match_rate_by_parse_status
    data = pd.DataFrame(
        [(status, rate.addresses, *(getattr(rate, c) for c in GEOCODE_STATUS_COLUMNS)) for status, rate in by_status.items()],
        columns=["parse_status", "addresses", *GEOCODE_STATUS_COLUMNS])
    voters = sources.voters_by_parse_status
    for status in sorted(set(voters) - set(data["parse_status"])):  # statuses never sent anywhere
        data.loc[len(data)] = [status, 0, 0, 0, 0, 0]
    data.insert(1, "voters", data["parse_status"].map(voters) if voters else np.nan)
    total = data["addresses"].sum()
    data["share_of_addresses"] = data["addresses"] / total if total else np.nan
    data = data.sort_values(["addresses", "parse_status"], ascending=[False, True]).reset_index(drop=True)
    return ReportTable(
        "23_quality_address_parse_status", "Addresses by parse status",
        "Voters (from the addresses stage) and distinct residential addresses (from the geocoding stage) by the "
        "normaliser's parse status (ok, po_box, rural_route, ambiguous, unparseable, missing), with what the "
        "geocoder made of the addresses.",
        data, formats={c: "count" for c in ("voters", "addresses", *GEOCODE_STATUS_COLUMNS)}
        | {"share_of_addresses": "pct"},
        empty_text="The geocode manifest records no parse statuses.")


def geocode_status_table(sources: ReportSources) -> ReportTable:
    names = sources.geocode_coverage.drop_duplicates("county_code").set_index("county_code")["county_name"] \
        if len(sources.geocode_coverage) else pd.Series(dtype=object)
    rows = [(county, names.get(county), rate.addresses, *(getattr(rate, c) for c in GEOCODE_STATUS_COLUMNS),
             rate.match_rate) for county, rate in sources.geocode_manifest.match_rate_by_county.items()]
    data = pd.DataFrame(rows, columns=["county_code", "county_name", "addresses", *GEOCODE_STATUS_COLUMNS,
                                       "match_rate"]).sort_values("county_code").reset_index(drop=True)
    return ReportTable(
        "24_quality_geocode_status_by_county", "Geocode status by county",
        "Distinct addresses by geocode status: match, tie (several candidates, none chosen), no_match, "
        "not_sent (address not parseable as a street address). Match rate = matches / addresses sent.",
        data, formats={c: "count" for c in ("addresses", *GEOCODE_STATUS_COLUMNS)} | {"match_rate": "pct"},
        empty_text="The geocode manifest records no counties.")


def files_table(sources: ReportSources) -> ReportTable:
    data = sources.provenance.copy()
    data["sha256"] = data["sha256"].astype(object).where(data["sha256"].notna(), "(not recorded)")
    layout = sources.import_manifest.layout
    return ReportTable(
        "25_quality_source_files", "The drop's files",
        f"Files this snapshot was built from, detected layout {layout or '(not recorded)'}. Rows read = rows loaded "
        "+ rows rejected; sizes, figures and SHA-256 checksums from the import stage's manifest.",
        data, formats={c: "count" for c in ("size", "rows_read", "rows_loaded", "rows_rejected")},
        empty_text="No source files recorded.")


def gates_table(sources: ReportSources) -> ReportTable:
    data = sources.gates
    shown = data.assign(
        result=np.where(data["passed"].eq(True), "passed",
                        np.where(data["accepted"].eq(True), "FAILED, accepted", "FAILED")) if len(data) else [],
        limit=data["limit"].map({"max": "at most", "min": "at least", "max_abs": "at most ±"}).fillna(data["limit"]),
        value=data["value"].map(lambda v: "not measured" if v is None or pd.isna(v) else f"{v:.4g}"))
    shown = shown[["stage", "gate", "value", "limit", "threshold", "result", "detail"]]
    return ReportTable("26_quality_gates", "Quality gates",
                       "Each quality gate a stage recorded in its manifest ([quality] thresholds in luigi.cfg): "
                       "the measured value, its threshold and the result. A stage with a failed gate does not "
                       "publish unless the run accepted it (voterpipe run --accept GATE).", data, shown,
                       empty_text="No quality gates recorded.")


def quality_tables(sources: ReportSources) -> list[ReportTable]:
    return [gates_table(sources), *rejects_tables(sources), fixes_table(sources), parse_status_table(sources),
            geocode_status_table(sources), files_table(sources)]
