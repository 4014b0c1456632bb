"""The snapshot report: one self-contained HTML page (charts inline as base64 PNG, drawn with
matplotlib's Agg backend) for a campaign analyst, and each chart's numbers as CSV beside it."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

from voterpipe import storage  # noqa: E402
from voterpipe.cohorts import OUTPUT_FILES, CohortConfig, load_cohort_config  # noqa: E402

PARTY_COLOURS = {
    "DEM": "#2166ac", "REP": "#b2182b", "UNA": "#7f7f7f", "LIB": "#e6ab02", "GRE": "#1b9e77",
    "OTH": "#7570b3", "unknown": "#d9d9d9",
}
CHANGE_LABELS = {
    "new_registrant": "New registrants", "removed": "Removed", "moved": "Moved (new address)",
    "party_switch": "Switched party",
}
CHECKSUM_KEYS = ("sha256", "checksum", "sha256sum", "digest")
NAME_KEYS = ("file", "name", "path", "source_file", "filename")
ROW_KEYS = ("rows", "rows_read", "lines", "lines_read", "records")


def _thousands(value: float, _pos: Any = None) -> str:
    return f"{value:,.0f}"


@dataclass
class ReportSources:
    """Everything the report reads, already loaded (tests build it by hand)."""

    state: str
    snapshot: date
    cohort_turnout: pd.DataFrame
    elections: pd.DataFrame
    household_sizes: pd.DataFrame
    household_party_mix: pd.DataFrame
    geocode_coverage: pd.DataFrame
    registrations: pd.DataFrame  # generation, party, status, voters
    transitions: pd.DataFrame | None = None
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["source_file", "reason", "rejected"]))
    provenance: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["file", "role", "rows_read", "rows_loaded", "rows_rejected", "sha256"]))
    cohort_manifest: dict = field(default_factory=dict)
    geocode_manifest: dict = field(default_factory=dict)
    import_manifest: dict = field(default_factory=dict)

    @classmethod
    def from_directories(cls, *, state: str, snapshot: date, cohorts_dir: Path, canonical_dir: Path,
                         geocoded_dir: Path | None = None, raw_dir: Path | None = None) -> "ReportSources":
        cohorts_dir, canonical_dir = Path(cohorts_dir), Path(canonical_dir)

        def table(name: str, filters: list | None = None) -> pd.DataFrame:
            return pq.read_table(cohorts_dir / OUTPUT_FILES[name], filters=filters).to_pandas(date_as_object=False)

        counted = pq.read_table(cohorts_dir / OUTPUT_FILES["voter_cohorts"],
                                columns=["generation", "party", "status"],
                                read_dictionary=["generation", "party", "status"]).to_pandas()
        registrations = (counted.groupby(["generation", "party", "status"], observed=True).size()
                         .rename("voters").reset_index())
        for column in ("generation", "party", "status"):
            registrations[column] = registrations[column].astype(object)
        transitions_path = cohorts_dir / OUTPUT_FILES["transitions"]
        import_manifest = _manifest(canonical_dir)
        rejects, loaded = _import_counts(canonical_dir)
        return cls(
            state=state, snapshot=snapshot,
            # The report charts state-level turnout only; tract rows can run to hundreds of thousands.
            cohort_turnout=table("cohort_turnout", [("geography_level", "=", "state")]),
            elections=table("elections"),
            household_sizes=table("household_sizes"), household_party_mix=table("household_party_mix"),
            geocode_coverage=table("geocode_coverage"), registrations=registrations,
            transitions=(pq.read_table(transitions_path).to_pandas(date_as_object=False)
                         if transitions_path.is_file() else None),
            rejects=rejects,
            provenance=file_provenance(import_manifest, loaded, rejects, raw_dir),
            cohort_manifest=_manifest(cohorts_dir),
            geocode_manifest=_manifest(geocoded_dir) if geocoded_dir else {},
            import_manifest=import_manifest,
        )


def _manifest(directory: Path | None) -> dict:
    if directory is None or not storage.is_published(Path(directory)):
        return {}
    return storage.read_manifest(Path(directory))


def _source_counts(path: Path, column: str) -> pd.Series:
    if not path.is_file() or column not in pq.read_schema(path).names:
        return pd.Series(dtype=np.int64)
    values = pq.read_table(path, columns=[column], read_dictionary=[column]).column(column).to_pandas()
    return values.astype(object).fillna("(unknown file)").value_counts()


def _import_counts(canonical_dir: Path) -> tuple[pd.DataFrame, pd.Series]:
    """(rejects by source_file and reason, rows loaded per source file) from the canonical stage."""
    rejects_path = canonical_dir / "rejects.parquet"
    if rejects_path.is_file():
        frame = pq.read_table(rejects_path, columns=["source_file", "reason"]).to_pandas()
        rejects = (frame.fillna({"source_file": "(unknown file)", "reason": "(no reason given)"})
                   .groupby(["source_file", "reason"]).size().rename("rejected").reset_index())
    else:
        rejects = pd.DataFrame(columns=["source_file", "reason", "rejected"])
    loaded = _source_counts(canonical_dir / "voters.parquet", "source_file").add(
        _source_counts(canonical_dir / "history.parquet", "source_file"), fill_value=0)
    return rejects, loaded.astype(np.int64)


def _walk_file_records(node: Any, found: list[dict]) -> None:
    """Collect manifest dicts that describe a file (they carry a checksum)."""
    if isinstance(node, dict):
        if any(k in node for k in NAME_KEYS) and any(k in node for k in (*CHECKSUM_KEYS, *ROW_KEYS)):
            found.append(node)
        for key, value in node.items():
            keyed_by_name = isinstance(value, dict) and not any(k in value for k in NAME_KEYS)
            if keyed_by_name and any(k in value for k in CHECKSUM_KEYS):
                found.append({"file": key, **value})  # {"ncvoter.txt": {"sha256": ...}}
            else:
                _walk_file_records(value, found)
    elif isinstance(node, list):
        for item in node:
            _walk_file_records(item, found)


def file_provenance(import_manifest: dict, loaded: pd.Series, rejects: pd.DataFrame,
                    raw_dir: Path | None) -> pd.DataFrame:
    """One row per source file: name, role, rows read / loaded / rejected and sha256.

    The import manifest's per-file numbers win; where it has none, rows loaded and rejected are
    counted in the canonical tables (records, so a wide-history voter file counts its history
    rows too) and the checksum is computed from the raw drop."""
    records: list[dict] = []
    _walk_file_records(import_manifest, records)
    rows: dict[str, dict] = {}
    for record in records:
        name = Path(str(next(record[k] for k in NAME_KEYS if k in record))).name
        entry = rows.setdefault(name, {"file": name})
        checksum = next((str(record[k]) for k in CHECKSUM_KEYS if record.get(k)), None)
        if checksum:
            entry["sha256"] = checksum
        if isinstance(record.get("role"), str):
            entry["role"] = record["role"]
        for key in ROW_KEYS:
            if isinstance(record.get(key), (int, float)):
                entry["rows_read"] = int(record[key])
                break
        for key in ("rows_loaded", "rows_rejected"):
            if isinstance(record.get(key), (int, float)):
                entry[key] = int(record[key])
    rejected = rejects.groupby("source_file")["rejected"].sum() if len(rejects) else pd.Series(dtype=np.int64)
    for name in set(loaded.index) | set(rejected.index):
        rows.setdefault(Path(str(name)).name, {"file": Path(str(name)).name})
    if raw_dir is not None and Path(raw_dir).is_dir():
        # The raw drop fills in missing checksums; it adds files only when the import manifest
        # listed none (files the importer ignored are not sources of this snapshot).
        listed = bool(records)
        for path in sorted(p for p in Path(raw_dir).rglob("*")
                           if p.is_file() and not p.name.startswith(".") and p.name != storage.MANIFEST):
            if listed and path.name not in rows:
                continue
            entry = rows.setdefault(path.name, {"file": path.name})
            if "sha256" not in entry:
                entry["sha256"] = storage.file_sha256(path)
    loaded_by_name = loaded.groupby(lambda n: Path(str(n)).name).sum() if len(loaded) else pd.Series(dtype=np.int64)
    rejected_by_name = (rejected.groupby(lambda n: Path(str(n)).name).sum() if len(rejected)
                        else pd.Series(dtype=np.int64))
    for name, entry in rows.items():
        entry.setdefault("rows_loaded", int(loaded_by_name.get(name, 0)))
        entry.setdefault("rows_rejected", int(rejected_by_name.get(name, 0)))
    return pd.DataFrame(sorted(rows.values(), key=lambda e: e["file"]),
                        columns=["file", "role", "rows_read", "rows_loaded", "rows_rejected", "sha256"])


# --- charts: each returns (figure or None, the numbers as a DataFrame, caption) -----------------

@dataclass
class Chart:
    slug: str
    title: str
    caption: str
    data: pd.DataFrame
    figure: Any = None  # None: nothing to draw, the caption says why


def _bar_labels(ax, bars, fmt: Callable[[float], str], fontsize: float = 7) -> None:
    """Value labels above vertical bars."""
    for bar in bars:
        ax.annotate(fmt(bar.get_height()), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=fontsize, xytext=(0, 1), textcoords="offset points")


def turnout_by_age_chart(sources: ReportSources, config: CohortConfig) -> Chart:
    turnout = sources.cohort_turnout
    generals = sources.elections[sources.elections["election_type"] == "general"].sort_values("election_date")
    rows = turnout[(turnout["geography_level"] == "state") & (turnout["dimension"] == "age_band_default")
                   & (turnout["election_type"] == "general")]
    bands = [b.label for b in config.age_schemes["default"]] + [config.unknown]
    data = rows[["election_date", "cohort", "registered", "voted", "turnout"]].rename(columns={"cohort": "age_band"})
    data = data.assign(order=data["age_band"].map({b: i for i, b in enumerate(bands)})) \
        .sort_values(["election_date", "order"]).drop(columns="order").reset_index(drop=True)
    data["election_date"] = pd.to_datetime(data["election_date"]).dt.date
    caption = ("Share of voters in each age band (age on election day) who voted, among voters on the "
               "current roll who were registered by that election day. Voters removed from the roll since "
               "are not counted, so older elections read somewhat high.")
    title = "Turnout by age band in each general election"
    if data.empty:
        return Chart("01_turnout_by_age", title, caption + " No general election in the vote history.", data)
    # Bands too small to read as a rate (e.g. a handful of pre-registered 16-year-olds) stay in the
    # CSV but are left off the chart.
    share = data["registered"] / data.groupby("election_date")["registered"].transform("sum")
    shown = set(data.loc[share >= 0.005, "age_band"])
    present = [b for b in bands if b in shown]
    hidden = [b for b in bands if b in set(data["age_band"]) and b not in shown]
    if hidden:
        caption += f" Left off the chart (under 0.5% of registered voters; numbers in the CSV): {', '.join(hidden)}."
    dates = list(pd.to_datetime(generals["election_date"]).dt.date) or sorted(set(data["election_date"]))
    dates = [d for d in dates if d in set(data["election_date"])]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / max(len(dates), 1)
    colours = plt.cm.Blues(np.linspace(0.35, 0.9, len(dates)))
    x = np.arange(len(present))
    for i, day in enumerate(dates):
        part = data[data["election_date"] == day].set_index("age_band").reindex(present)
        bars = ax.bar(x + (i - (len(dates) - 1) / 2) * width, part["turnout"].fillna(0) * 100, width,
                      label=f"General {day:%d %b %Y}", color=colours[i])
        if len(dates) <= 4:
            _bar_labels(ax, bars, lambda v: f"{v:.0f}", fontsize=6.5)
    ax.set_xticks(x, present)
    ax.set_xlabel("Age band (age on election day)")
    ax.set_ylabel("Turnout (% of registered voters)")
    ax.set_ylim(0, 112)  # headroom for the legend row
    ax.set_yticks(range(0, 101, 20))
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_title(f"{title}, {sources.state.upper()}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7.5, ncols=min(len(dates), 6), loc="upper left")
    fig.tight_layout()
    return Chart("01_turnout_by_age", title, caption, data, fig)


def registrations_chart(sources: ReportSources, config: CohortConfig) -> Chart:
    frame = sources.registrations.groupby(["generation", "party"], as_index=False)["voters"].sum()
    generations = [g.label for g in config.generations] + [config.unknown]
    others = sorted(set(frame["party"]) - set(config.party_order) - {config.unknown})
    parties = [p for p in (*config.party_order, *others, config.unknown) if p in set(frame["party"])]
    table = frame.pivot_table(index="generation", columns="party", values="voters", aggfunc="sum", fill_value=0)
    table = table.reindex([g for g in generations if g in table.index], columns=parties, fill_value=0)
    data = frame.assign(order=frame["generation"].map({g: i for i, g in enumerate(generations)}))\
        .sort_values(["order", "party"]).drop(columns="order").reset_index(drop=True)
    title = "Registered voters by generation and party"
    caption = ("Everyone on the roll (all statuses) by Pew generation (birth year) and registered party. "
               "'unknown' generation: birth data missing or a placeholder; 'unknown' party: no party on file.")
    if table.empty:
        return Chart("02_registrations_by_generation_party", title, caption, data)
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(table) + 1.8))
    left = np.zeros(len(table))
    for party in parties:
        values = table[party].to_numpy(dtype=float)
        ax.barh(table.index, values, left=left, color=PARTY_COLOURS.get(party, "#bcbd22"),
                label=config.party_names.get(party, party))
        left += values
    for y, total in enumerate(left):
        ax.annotate(f"{total:,.0f}", (total, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Registered voters (count)")
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_xlim(0, left.max() * 1.12 if left.max() else 1)
    ax.set_title(f"{title}, {sources.state.upper()} {sources.snapshot.isoformat()}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return Chart("02_registrations_by_generation_party", title, caption, data, fig)


def geocode_chart(sources: ReportSources) -> Chart:
    coverage = sources.geocode_coverage.copy()
    by_county = sources.geocode_manifest.get("match_rate_by_county") or {}
    coverage["address_match_rate"] = coverage["county_code"].map(
        {str(k): v.get("match_rate") for k, v in by_county.items() if isinstance(v, dict)})
    coverage["addresses"] = coverage["county_code"].map(
        {str(k): v.get("addresses") for k, v in by_county.items() if isinstance(v, dict)})
    coverage["label"] = np.where(coverage["county_name"].notna(),
                                 coverage["county_name"].astype(str) + " (" + coverage["county_code"].astype(str) + ")",
                                 coverage["county_code"].astype(str))
    use_address = coverage["address_match_rate"].notna().any()
    rate_column = "address_match_rate" if use_address else "geocode_rate"
    coverage = coverage.sort_values([rate_column, "label"], na_position="first").reset_index(drop=True)
    data = coverage[["county_code", "county_name", "voters", "voters_with_address", "voters_geocoded",
                     "geocode_rate", "addresses", "address_match_rate"]]
    title = "Geocode match rate by county"
    caption = (("Bars: share of distinct addresses sent to the geocoder that matched (from the geocoding "
                "stage). Dots: " if use_address else "Bars: ")
               + "share of the county's voters whose household address matched. Lowest first: these "
               "counties have the most voters without a census tract or geocoded district.")
    if coverage.empty:
        return Chart("03_geocode_match_rate_by_county", title, caption, data)
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.2 * len(coverage) + 1.8)), layout="constrained")
    y = np.arange(len(coverage))
    rates = coverage[rate_column].fillna(0) * 100
    small = len(coverage) > 30
    ax.barh(y, rates, color="#4292c6", label="addresses matched" if use_address else "voters geocoded")
    if use_address:
        ax.plot(coverage["geocode_rate"] * 100, y, "o", color="#08306b", markersize=3, label="voters geocoded")
    for position, rate in zip(y, rates):
        ax.annotate(f"{rate:.1f}%", (rate, position), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=6 if small else 8)
    ax.set_yticks(y, coverage["label"], fontsize=7 if small else 9)
    ax.set_ylim(len(coverage) - 0.4, -0.6)  # lowest rate at the top
    ax.set_xlim(0, 108)
    ax.set_xticks([0, 20, 40, 60, 80, 100])
    ax.xaxis.set_major_formatter(PercentFormatter(100))
    ax.set_xlabel("Match rate (%)")
    ax.set_title(f"{title}, {sources.state.upper()} {sources.snapshot.isoformat()}")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncols=2, frameon=False)  # clear of the bars
    return Chart("03_geocode_match_rate_by_county", title, caption, data, fig)


def rejects_chart(sources: ReportSources, top: int = 15) -> Chart:
    """Rejected lines by reason code (the text before the first ':'); the CSV keeps each full reason."""
    rejects = sources.rejects
    if len(rejects):
        data = rejects.groupby("reason", as_index=False)["rejected"].sum()
        data.insert(0, "reason_code", data["reason"].astype(str).str.split(":", n=1).str[0].str.strip())
        data = data.sort_values(["rejected", "reason"], ascending=[False, True]).reset_index(drop=True)
    else:
        data = pd.DataFrame({"reason_code": pd.Series(dtype=object), "reason": pd.Series(dtype=object),
                             "rejected": pd.Series(dtype=np.int64)})
    totals = sources.import_manifest.get("totals") or {}
    read = int(totals.get("rows_read") or 0) or (
        int(sources.provenance["rows_loaded"].sum() + sources.provenance["rows_rejected"].sum())
        if len(sources.provenance) else 0)
    data["share_of_lines_read"] = data["rejected"] / read if read else np.nan
    title = "Import rejects by reason"
    caption = ("Lines of the state's files that could not be loaded, by reason (the CSV gives each detailed "
               "reason; every rejected line is kept in rejects.parquet with its file and line number)"
               + (f"; {int(data['rejected'].sum()):,} of {read:,} lines read ({data['rejected'].sum() / read:.2%})."
                  if read and len(data) else "."))
    if data.empty:
        return Chart("04_import_rejects_by_reason", title, caption + " No line was rejected.", data)
    by_code = data.groupby("reason_code")["rejected"].sum().sort_values(ascending=False)
    if len(by_code) > top:
        by_code = pd.concat([by_code.head(top - 1), pd.Series({"(other reasons)": by_code.iloc[top - 1:].sum()})])
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(by_code) + 1.6))
    bars = ax.barh(by_code.index.astype(str), by_code.to_numpy(), color="#de6e56")
    for bar, value in zip(bars, by_code.to_numpy()):
        ax.annotate(f"{value:,}", (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Rejected lines (count)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_xlim(0, by_code.max() * 1.15)
    ax.set_title(f"{title}, {sources.state.upper()} {sources.snapshot.isoformat()}")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return Chart("04_import_rejects_by_reason", title, caption, data, fig)


def household_size_chart(sources: ReportSources) -> Chart:
    data = sources.household_sizes.sort_values("size_order").reset_index(drop=True)
    data = data[["household_size", "households", "voters"]]
    total = data["households"].sum()
    data = data.assign(share_of_households=data["households"] / total if total else np.nan)
    title = "Household size distribution"
    caption = ("Households (voters registered at the same residential address, unit included) by number of "
               "registered voters; the label above each bar is the share of households.")
    if not total:
        return Chart("05_household_sizes", title, caption + " No households were built.", data)
    fig, ax = plt.subplots(figsize=(10, 4))
    bars = ax.bar(data["household_size"], data["households"], color="#74a9cf")
    for bar, share in zip(bars, data["share_of_households"]):
        ax.annotate(f"{share:.1%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 1), textcoords="offset points")
    ax.set_xlabel("Registered voters in the household")
    ax.set_ylabel("Households (count)")
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_ylim(0, data["households"].max() * 1.12)
    ax.set_title(f"{title}, {sources.state.upper()} {sources.snapshot.isoformat()}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return Chart("05_household_sizes", title, caption, data, fig)


def mixed_party_chart(sources: ReportSources, config: CohortConfig) -> Chart:
    mix = sources.household_party_mix
    rows = mix[mix["dimension"] == "age_band_default"]
    bands = [b.label for b in config.age_schemes["default"]] + [config.unknown]
    table = rows.pivot_table(index="cohort", columns="party_mix", values="voters", aggfunc="sum", fill_value=0)
    table = table.reindex([b for b in bands if b in table.index])
    in_household = table.drop(columns=[c for c in ("no_household",) if c in table.columns])
    denominator = in_household.sum(axis=1)
    data = pd.DataFrame({
        "age_band": table.index,
        "voters_in_households": denominator.to_numpy(dtype=np.int64),
        "in_mixed_party_household": (table["mixed"] if "mixed" in table
                                     else pd.Series(0, index=table.index)).to_numpy(dtype=np.int64),
    })
    data["share_mixed"] = np.where(
        data["voters_in_households"] > 0,
        data["in_mixed_party_household"] / data["voters_in_households"].clip(lower=1), np.nan)
    title = "Voters living in mixed-party households, by age band"
    caption = ("Share of voters with a household whose registered voters do not all share one party "
               "(household party mix from the households stage).")
    if data.empty or not data["voters_in_households"].sum():
        return Chart("06_mixed_party_households", title, caption, data)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    bars = ax.bar(data["age_band"], data["share_mixed"].fillna(0) * 100, color="#9e9ac8")
    _bar_labels(ax, bars, lambda v: f"{v:.0f}%", fontsize=8)
    ax.set_xlabel("Age band (age at the snapshot)")
    ax.set_ylabel("In a mixed-party household (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_ylim(0, max(5.0, float(data["share_mixed"].max() * 100) * 1.2))
    ax.set_title(f"{title}, {sources.state.upper()} {sources.snapshot.isoformat()}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return Chart("06_mixed_party_households", title, caption, data, fig)


def changes_chart(sources: ReportSources, config: CohortConfig) -> Chart:
    title = "Changes since the previous snapshot"
    transitions = sources.transitions
    columns = ["change", "age_band", "voters"]
    if transitions is None or transitions.empty:
        caption = ("No earlier snapshot of this state has been processed, so there is nothing to compare."
                   if transitions is None else "No voter was added, removed, moved or switched party.")
        return Chart("07_snapshot_changes", title, caption, pd.DataFrame(columns=columns))
    previous = transitions["previous_snapshot"].dropna()
    since = pd.Timestamp(previous.iloc[0]).date().isoformat() if len(previous) else "the previous snapshot"
    rows = transitions[transitions["dimension"] == "age_band_default"]
    bands = [b.label for b in config.age_schemes["default"]] + [config.unknown]
    table = rows.pivot_table(index="cohort", columns="change", values="voters", aggfunc="sum", fill_value=0)
    table = table.reindex([b for b in bands if b in table.index])
    changes = [c for c in CHANGE_LABELS if c in table.columns]
    data = rows.rename(columns={"cohort": "age_band"})[columns].reset_index(drop=True)
    totals = transitions[transitions["dimension"] == "all"].set_index("change")["voters"]
    caption = (f"Voters by age band (current age; previous age for removed voters) compared with the snapshot of "
               f"{since}: " + ", ".join(f"{CHANGE_LABELS[c].lower()} {int(totals.get(c, 0)):,}" for c in CHANGE_LABELS)
               + ". Moved = same voter id at a different residential address key.")
    fig, ax = plt.subplots(figsize=(10, 4.4))
    width = 0.8 / max(len(changes), 1)
    colours = {"new_registrant": "#1a9850", "removed": "#d73027", "moved": "#fdae61", "party_switch": "#7570b3"}
    x = np.arange(len(table))
    for i, change in enumerate(changes):
        ax.bar(x + (i - (len(changes) - 1) / 2) * width, table[change], width, label=CHANGE_LABELS[change],
               color=colours[change])
    ax.set_xticks(x, table.index)
    ax.set_xlabel("Age band")
    ax.set_ylabel("Voters (count)")
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.set_title(f"{title} ({since} to {sources.snapshot.isoformat()}), {sources.state.upper()}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return Chart("07_snapshot_changes", title, caption, data, fig)


# --- the page -------------------------------------------------------------------------------

_STYLE = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1080px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}
h1{margin-bottom:.1em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:150px}
.card b{display:block;font-size:1.5em}
.note{background:#f8f8f2;border-left:4px solid #c9c98f;padding:.5em 1em;font-size:.92em}
img{max-width:100%;height:auto;border:1px solid #eee}
code{font-size:.9em}
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def _table_html(frame: pd.DataFrame, numeric: set[str] = frozenset()) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row):
            if column in numeric and isinstance(value, (int, float, np.integer, np.floating)) and not pd.isna(value):
                cells.append(f'<td class="n">{value:,.0f}</td>')
            else:
                cells.append(f"<td>{_esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def build_charts(sources: ReportSources, config: CohortConfig) -> list[Chart]:
    return [
        turnout_by_age_chart(sources, config),
        registrations_chart(sources, config),
        geocode_chart(sources),
        rejects_chart(sources),
        household_size_chart(sources),
        mixed_party_chart(sources, config),
        changes_chart(sources, config),
    ]


def _summary_cards(sources: ReportSources) -> str:
    manifest = sources.cohort_manifest
    statuses = sources.registrations.groupby("status")["voters"].sum()
    voters = int(statuses.sum())
    geocoded = manifest.get("voters_geocoded")
    rejected = int(sources.rejects["rejected"].sum()) if len(sources.rejects) else 0
    households = int(sources.household_sizes["households"].sum()) if len(sources.household_sizes) else 0
    generals = sources.elections[sources.elections.get("is_general_considered", False) == True]  # noqa: E712
    cards = [
        ("Voters on the roll", f"{voters:,}"),
        ("Active", f"{int(statuses.get('active', 0)):,}"),
        ("Inactive", f"{int(statuses.get('inactive', 0)):,}"),
        ("Removed", f"{int(statuses.get('removed', 0)):,}"),
        ("Households", f"{households:,}"),
        ("Voters geocoded", f"{geocoded / voters:.1%}" if geocoded is not None and voters else "n/a"),
        ("Elections in history", f"{len(sources.elections):,}"),
        ("Generals behind turnout cohorts", f"{len(generals)}"),
        ("Lines rejected at import", f"{rejected:,}"),
    ]
    body = "".join(f'<div class="card"><b>{_esc(v)}</b>{_esc(k)}</div>' for k, v in cards)
    return f'<div class="cards">{body}</div>'


def _turnout_cohort_table(sources: ReportSources, config: CohortConfig) -> str:
    counts = sources.cohort_manifest.get("turnout_cohorts") or {}
    if not counts:
        return ""
    total = sum(counts.values()) or 1
    frame = pd.DataFrame(
        [(config.turnout_labels.get(code, code), counts.get(code, 0), f"{counts.get(code, 0) / total:.1%}")
         for code in config.turnout_order], columns=["Turnout cohort", "Voters", "Share"])
    return _table_html(frame, {"Voters"})


def render_html(sources: ReportSources, charts: list[Chart], images: dict[str, bytes], config: CohortConfig) -> str:
    manifest = sources.cohort_manifest
    generals = ", ".join(manifest.get("generals_considered") or []) or "none found"
    age_methods = manifest.get("age_methods") or {}
    district_sources = manifest.get("district_sources") or {}
    provenance = sources.provenance.copy()
    if len(provenance):
        provenance["sha256"] = provenance["sha256"].astype(object).where(provenance["sha256"].notna(), "(not recorded)")
    provenance = provenance.rename(columns={
        "file": "File", "role": "Role", "rows_read": "Rows read", "rows_loaded": "Rows loaded",
        "rows_rejected": "Rows rejected", "sha256": "SHA-256"})
    layout = sources.import_manifest.get("layout")
    methods_text = ", ".join(f"{k} {v:,}" for k, v in age_methods.items())
    sources_text = ", ".join(f"{k} {v:,}" for k, v in district_sources.items())
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(sources.state.upper())} voter file snapshot {_esc(sources.snapshot.isoformat())}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(sources.state.upper())} voter file: snapshot of {_esc(sources.snapshot.isoformat())}</h1>",
        "<p class='sub'>Registration, turnout, household and geocoding summary of one state drop, "
        "produced by voterpipe. Every chart's numbers are in the CSV file linked below it.</p>",
        _summary_cards(sources),
        "<h2>Source files</h2>",
        "<p>The state's files this snapshot was built from" + _esc(f" (layout {layout})" if layout else "")
        + ". Rows read = rows loaded + rows rejected; the figures and SHA-256 checksums come from the "
        "import stage's manifest (where it lacks them, from the imported tables and the raw drop).</p>",
        (_table_html(provenance, {"Rows read", "Rows loaded", "Rows rejected"}) if len(provenance)
         else "<p>No source files recorded.</p>"),
        "<h2>How to read the numbers</h2><div class='note'><ul>",
        "<li><b>Turnout</b> = voters with a vote-history record for the election ÷ voters on the current roll "
        "registered on or before election day. Voters removed from the roll since are in neither number, "
        "so turnout in older elections reads somewhat high.</li>",
        f"<li><b>Age</b> is computed from the birth date where the state gives one, otherwise from the birth "
        f"year (the age reached during the year). Methods used: {_esc(methods_text)}. "
        "Missing or placeholder birth data is shown as <i>unknown</i>, never folded into a band.</li>",
        f"<li><b>Turnout cohorts</b> count the last general elections before the snapshot ({_esc(generals)}). "
        "Super voter: voted in all of them. Consistent: more than half of those the voter was registered for. "
        "Sporadic: at least one. Lapsed: none of them but some older or non-general vote. Never voted: no vote "
        "on record. New registrant: registered after the latest of them.</li>",
        f"<li><b>Districts</b> come from the geocoded household address where it matched, otherwise from the "
        f"district columns of the state's file ({_esc(sources_text)} voters). "
        "Census tracts exist only for geocoded voters.</li></ul></div>",
        "<h3>Voters by turnout cohort</h3>",
        _turnout_cohort_table(sources, config),
    ]
    for chart in charts:
        parts.append(f"<h2 id='{_esc(chart.slug)}'>{_esc(chart.title)}</h2>")
        if chart.slug in images:
            encoded = base64.b64encode(images[chart.slug]).decode("ascii")
            parts.append(f"<img alt='{_esc(chart.title)}' src='data:image/png;base64,{encoded}'>")
        parts.append(f"<p>{_esc(chart.caption)}</p>")
        parts.append(f"<p>Data: <a href='{_esc(chart.slug)}.csv'>{_esc(chart.slug)}.csv</a></p>")
        if chart.slug == "07_snapshot_changes" and sources.transitions is not None:
            switches = sources.transitions[sources.transitions["dimension"] == "party_switch"]
            if len(switches):
                top = switches.sort_values("voters", ascending=False).head(10)[["cohort", "voters"]]
                parts.append("<h3>Most common party switches</h3>")
                parts.append(_table_html(top.rename(columns={"cohort": "From -> to", "voters": "Voters"}), {"Voters"}))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(sources: ReportSources, directory: Path, config: CohortConfig | None = None) -> dict:
    """Write report.html, and <chart>.csv and <chart>.png for every chart, into `directory`.
    Returns the manifest body: files written and the charts drawn."""
    config = config or load_cohort_config()
    directory = Path(directory)
    charts = build_charts(sources, config)
    images: dict[str, bytes] = {}
    files = {}
    for chart in charts:
        csv_path = directory / f"{chart.slug}.csv"
        with storage.atomic_file(csv_path, "w") as handle:
            chart.data.to_csv(handle, index=False, lineterminator="\n")
        files[csv_path.name] = int(len(chart.data))
        if chart.figure is not None:
            images[chart.slug] = _png(chart.figure)
            with storage.atomic_file(directory / f"{chart.slug}.png", "wb") as handle:
                handle.write(images[chart.slug])
            files[f"{chart.slug}.png"] = len(images[chart.slug])
    page = render_html(sources, charts, images, config)
    with storage.atomic_file(directory / "report.html", "w") as handle:
        handle.write(page)
    files["report.html"] = len(page)
    return {"files": files, "charts": [c.slug for c in charts],
            "charts_drawn": sorted(images), "cohort_config": Path(config.source).name}
