"""The report's charts: each returns a Chart (a matplotlib figure drawn with the Agg backend, or
None when there is nothing to draw, the numbers behind it as a DataFrame, and its caption)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

from voterpipe.cohorts import CohortConfig  # noqa: E402
from voterpipe.report.quality import skipped_lines, split_rejects  # noqa: E402
from voterpipe.report.sources import ReportSources  # noqa: E402

PARTY_COLOURS = {
    "DEM": "#2166ac", "REP": "#b2182b", "UNA": "#7f7f7f", "LIB": "#e6ab02", "GRE": "#1b9e77",
    "OTH": "#7570b3", "unknown": "#d9d9d9",
}
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
CHANGE_COLOURS = {"new_registrant": "#009E73", "removed": "#D55E00", "moved": "#56B4E9", "party_switch": "#CC79A7"}
CHANGE_LABELS = {
    "new_registrant": "New registrants", "removed": "Removed", "moved": "Moved (new address)",
    "party_switch": "Switched party",
}


def _thousands(value: float, _pos: Any = None) -> str:
    return f"{value:,.0f}"



@dataclass
class Chart:
    slug: str  # file names come from catalog.chart_csv / chart_image
    title: str
    caption: str
    data: pd.DataFrame
    figure: Any = None  # None: nothing to draw, the caption says why
    alt: str = ""  # the image's alt text (default: title and caption)

    @property
    def alt_text(self) -> str:
        return self.alt or f"Chart: {self.title}. {self.caption}"


def new_figure(size: tuple[float, float]):
    """A figure with constrained layout, so a legend placed 'outside' takes room of its own."""
    return plt.subplots(figsize=size, layout="constrained")


def legend_below(fig, ax, ncols: int, fontsize: float = 8) -> None:
    """The legend under the axes, never over bars or their labels."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=max(1, ncols), fontsize=fontsize,
                   frameon=False)


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
    fig, ax = new_figure((10, 5.2))
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
    ax.set_ylim(0, 108)  # headroom for the bar labels
    ax.set_yticks(range(0, 101, 20))
    ax.yaxis.set_major_formatter(PercentFormatter(100))
    ax.set_title(f"{title}, {sources.state.upper()}")
    ax.grid(axis="y", alpha=0.3)
    legend_below(fig, ax, min(len(dates), 6), fontsize=7.5)
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
    fig, ax = new_figure((10, 0.55 * len(table) + 2.3))
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
    legend_below(fig, ax, min(len(parties), 7))
    ax.grid(axis="x", alpha=0.3)
    return Chart("02_registrations_by_generation_party", title, caption, data, fig)


def geocode_chart(sources: ReportSources) -> Chart:
    coverage = sources.geocode_coverage.copy()
    by_county = sources.geocode_manifest.match_rate_by_county
    coverage["address_match_rate"] = coverage["county_code"].map({k: v.match_rate for k, v in by_county.items()})
    coverage["addresses"] = coverage["county_code"].map({k: v.addresses for k, v in by_county.items()})
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
    """Rejected lines by reason code (the text before the first ':'); the CSV keeps each full reason.
    Skipped non-record lines (FL 'did not vote') are left out: the caption counts them apart."""
    rejects, _ = split_rejects(sources.rejects)
    skipped = skipped_lines(sources)
    skipped_count = int(skipped["rejected"].sum()) if len(skipped) else 0
    if len(rejects):
        data = rejects.groupby("reason", as_index=False)["rejected"].sum()
        data.insert(0, "reason_code", data["reason"].astype(str).str.split(":", n=1).str[0].str.strip())
        data = data.sort_values(["rejected", "reason"], ascending=[False, True]).reset_index(drop=True)
    else:
        data = pd.DataFrame({"reason_code": pd.Series(dtype=object), "reason": pd.Series(dtype=object),
                             "rejected": pd.Series(dtype=np.int64)})
    read = sources.import_manifest.totals.rows_read or (
        int(sources.provenance["rows_loaded"].sum() + sources.provenance["rows_rejected"].sum())
        if len(sources.provenance) else 0)
    data["share_of_lines_read"] = data["rejected"] / read if read else np.nan
    title = "Import rejects by reason"
    caption = ("Lines of the state's files that could not be loaded, by reason (the CSV gives each detailed "
               "reason; every rejected line is kept in rejects.parquet with its file and line number)"
               + (f"; {int(data['rejected'].sum()):,} of {read:,} lines read ({data['rejected'].sum() / read:.2%})."
                  if read and len(data) else ".")
               + (f" Not counted here: {skipped_count:,} skipped lines that are not records (see Data quality)."
                  if skipped_count else ""))
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
    fig, ax = new_figure((10, 4.8))
    width = 0.8 / max(len(changes), 1)
    colours = CHANGE_COLOURS
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
    legend_below(fig, ax, len(changes))
    return Chart("07_snapshot_changes", title, caption, data, fig)


def figure_png(figure) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
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
