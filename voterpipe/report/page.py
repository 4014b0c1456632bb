"""The report page: one self-contained HTML file (charts inline as base64 PNG), and write_report(),
which writes it with each chart's CSV and PNG beside it through voterpipe.storage."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from voterpipe import catalog, storage
from voterpipe.cohorts import CohortConfig, load_cohort_config
from voterpipe.manifests import ReportManifest
from voterpipe.report.charts import Chart, build_charts, figure_png
from voterpipe.report.geography import household_numbers
from voterpipe.report.maps import household_points, map_charts
from voterpipe.report.markup import SORT_SCRIPT, STYLE, ReportTable, esc, table_html
from voterpipe.report.quality import quality_tables, skipped_lines, split_rejects
from voterpipe.report.changes import CHANGE_COLUMNS, CHANGE_TITLES, CHANGES, voters_of
from voterpipe.report.sections import changes_section, geography_intro, geography_section
from voterpipe.report.sources import ReportSources, last_generals, released

def _esc(value: Any) -> str:
    return esc(value)


def _table_html(frame: pd.DataFrame, numeric: set[str] = frozenset()) -> str:
    return table_html(frame, {c: "count" for c in numeric})


def _summary_cards(sources: ReportSources) -> str:
    statuses = sources.registrations.groupby("status")["voters"].sum()
    voters = int(statuses.sum())
    geocoded = sources.cohort_manifest.voters_geocoded
    rejects, _ = split_rejects(sources.rejects)
    skipped = skipped_lines(sources)
    rejected = int(rejects["rejected"].sum()) if len(rejects) else 0
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
    if len(skipped):
        cards.append(("Lines skipped (not records)", f"{int(skipped['rejected'].sum()):,}"))
    body = "".join(f'<div class="card"><b>{_esc(v)}</b>{_esc(k)}</div>' for k, v in cards)
    return f'<div class="cards">{body}</div>'


def _turnout_cohort_table(sources: ReportSources, config: CohortConfig) -> str:
    counts = sources.cohort_manifest.turnout_cohorts
    if not counts:
        return ""
    total = sum(counts.values()) or 1
    frame = pd.DataFrame(
        [(config.turnout_labels.get(code, code), counts.get(code, 0), f"{counts.get(code, 0) / total:.1%}")
         for code in config.turnout_order], columns=["Turnout cohort", "Voters", "Share"])
    return _table_html(frame, {"Voters"})


def _reading_notes(sources: ReportSources, config: CohortConfig) -> list[str]:
    manifest = sources.cohort_manifest
    generals = ", ".join(manifest.generals_considered) or "none found"
    methods_text = ", ".join(f"{k} {v:,}" for k, v in manifest.age_methods.items())
    sources_text = ", ".join(f"{k} {v:,}" for k, v in manifest.district_sources.items())
    return [
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


def _chart_section(chart: Chart, image: bytes | None, sources: ReportSources, level: str = "h3") -> list[str]:
    parts = [f"<{level} id='{_esc(chart.slug)}'>{_esc(chart.title)}</{level}>"]
    if image is not None:
        encoded = base64.b64encode(image).decode("ascii")
        parts.append(f"<figure><img alt='{_esc(chart.alt_text)}' src='data:image/png;base64,{encoded}'>"
                     f"<figcaption>{_esc(chart.caption)}</figcaption></figure>")
    else:
        parts.append(f"<p class='missing'>{_esc(chart.caption)}</p>")
    csv_name = catalog.chart_csv(chart.slug)
    parts.append(f"<p>Data: <a href='{_esc(csv_name)}'>{_esc(csv_name)}</a></p>")
    if chart.slug == "07_snapshot_changes" and sources.transitions is not None:
        switches = sources.transitions[sources.transitions["dimension"] == "party_switch"]
        if len(switches):
            top = switches.sort_values("voters", ascending=False).head(10)[["cohort", "voters"]]
            parts.append("<h4>Most common party switches</h4>")
            parts.append(_table_html(top.rename(columns={"cohort": "From -> to", "voters": "Voters"}), {"Voters"}))
    return parts


def _table_section(table: ReportTable, level: str = "h3") -> list[str]:
    csv_name = catalog.chart_csv(table.slug)
    shown = table.data if table.shown is None else table.shown
    body = table_html(shown, table.formats, sortable=True) if len(shown) else f"<p>{_esc(table.empty_text)}</p>"
    return [f"<{level} id='{_esc(table.slug)}'>{_esc(table.title)}</{level}>", f"<p>{_esc(table.caption)}</p>",
            body, f"<p>Data: <a href='{_esc(csv_name)}'>{_esc(csv_name)}</a></p>"]


def _changes_section(sources: ReportSources, tables: list[ReportTable],
                     change_counts: dict[str, int] | None) -> list[str]:
    parts = ["<h2 id='changes'>Changes since the previous snapshot</h2>"]
    if change_counts is None:
        return parts + ["<p class='missing'>No previous snapshot: this is the state's first processed drop (or the "
                        "report was built without --previous), so there are no new registrations, removals, moves, "
                        "party switches or status changes to show.</p>"]
    previous = sources.previous_snapshot.isoformat() if sources.previous_snapshot else "the previous snapshot"
    items = "".join(f"<li>{_esc(CHANGE_TITLES[c])}: <b>{change_counts[c]:,}</b> voters; their ids: "
                    f"<a href='{_esc(catalog.change_voters_csv(c))}'>{_esc(catalog.change_voters_csv(c))}</a>"
                    + (f" ({_esc(CHANGE_COLUMNS[c])})" if CHANGE_COLUMNS[c] else "") + "</li>" for c in CHANGES)
    parts.append(f"<p>This roll compared voter by voter with the roll of {_esc(previous)}.</p><ul>{items}</ul>")
    for table in tables:
        parts += _table_section(table)
    return parts


def _write_change_voters(changes: pd.DataFrame, directory: Path, files: dict) -> dict[str, int]:
    """One CSV of voter ids per change (catalog.change_voters_csv); returns the voters of each."""
    counts = {}
    for change in CHANGES:
        rows = voters_of(changes, change)
        name = catalog.change_voters_csv(change)
        with storage.atomic_file(directory / name, "w") as handle:
            spreadsheet_safe(rows).to_csv(handle, index=False, lineterminator="\n")
        files[name] = counts[change] = int(len(rows))
    return counts


def _contents(sections: list[tuple[str, str]]) -> str:
    items = "".join(f"<li><a href='#{_esc(anchor)}'>{_esc(title)}</a></li>" for anchor, title in sections)
    return f"<nav aria-label='Contents'><h2>Contents</h2><ol>{items}</ol></nav>"


def render_html(sources: ReportSources, charts: list[Chart], images: dict[str, bytes], config: CohortConfig,
                tables: dict[str, list[ReportTable]] | None = None, maps: list[Chart] = (),
                change_counts: dict[str, int] | None = None) -> str:
    """The page; `tables` holds the 'geography', 'changes' and 'quality' sections' tables;
    `change_counts` the voters of each snapshot change (None: no previous snapshot)."""
    tables = tables or {}
    title = f"{sources.state.upper()} voter file snapshot {sources.snapshot.isoformat()}"
    sections = [("geography", "Registration and turnout by geography"), ("changes", "Changes since the previous "
                "snapshot"), ("maps", "Maps"), ("charts", "Charts"), ("quality", "Data quality")]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_esc(title)}</title>",
        f"<style>{STYLE}</style></head><body><main>",
        f"<h1>{_esc(sources.state.upper())} voter file: snapshot of {_esc(sources.snapshot.isoformat())}</h1>",
        "<p class='sub'>Registration, turnout, household, geocoding and data-quality summary of one state drop, "
        "produced by voterpipe. Every chart's and table's numbers are in the CSV file linked below it.</p>",
        _summary_cards(sources), _contents(sections),
        *_reading_notes(sources, config),
        "<h2 id='geography'>Registration and turnout by geography</h2>",
    ]
    if tables.get("geography"):
        parts.append(f"<p>{_esc(geography_intro(sources))}</p>")
    else:
        parts.append("<p class='missing'>No per-voter geography was read, so no geography table is given.</p>")
    for table in tables.get("geography", []):
        parts += _table_section(table)
    parts += _changes_section(sources, tables.get("changes", []), change_counts)
    parts.append("<h2 id='maps'>Maps</h2>")
    for chart in maps:
        parts += _chart_section(chart, images.get(chart.slug), sources, "h3")
    parts.append("<h2 id='charts'>Charts</h2>")
    for chart in charts:
        parts += _chart_section(chart, images.get(chart.slug), sources, "h3")
    parts.append("<h2 id='quality'>Data quality</h2>")
    for table in tables.get("quality", []):
        parts += _table_section(table)
    parts.append(f"</main><script>{SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame for a CSV: a text cell a spreadsheet would run as a formula (starting with = + - @,
    tab or CR, and not a number) gets a leading apostrophe, so it opens as text (CSV injection)."""
    def cell(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
            return "'" + value
        return value

    text = [name for name in frame.columns if pd.api.types.is_string_dtype(frame[name].dtype)]
    if not text:
        return frame
    return frame.assign(**{name: frame[name].map(cell) for name in text})


def write_report(sources: ReportSources, directory: Path, config: CohortConfig | None = None) -> dict:
    """Write the page (catalog.REPORT_PAGE), and each chart's CSV and PNG, into `directory`.
    Returns the manifest body (manifests.ReportManifest): files written and the charts drawn."""
    config = config or load_cohort_config()
    directory = Path(directory)
    charts = build_charts(sources, config)
    voters = sources.voter_geography
    households = released(household_numbers)(voters["household_id"]) if voters is not None and "household_id" in voters \
        else None
    del voters
    geography, by_level = released(geography_section)(sources, config, households)
    del households
    # each per-voter input is let go once read (when the caller keeps no reference: peak memory)
    sources = replace(sources, general_votes=None)
    generals = last_generals(sources.elections, sources.snapshot)
    changes, voter_changes = released(changes_section)(sources)
    points = released(household_points)(sources)
    sources = replace(sources, points=None)
    maps = released(map_charts)(sources, by_level, generals[-1] if generals else None, voter_changes, points)
    del points
    sources = replace(sources, voter_geography=None, previous_roll=None, tracts_by_address=None)
    tables = {"geography": geography, "changes": changes, "quality": quality_tables(sources)}
    images: dict[str, bytes] = {}
    files = {}
    for table in (t for section in tables.values() for t in section):
        csv_name = catalog.chart_csv(table.slug)
        with storage.atomic_file(directory / csv_name, "w") as handle:
            spreadsheet_safe(table.data).to_csv(handle, index=False, lineterminator="\n")
        files[csv_name] = int(len(table.data))
    for chart in [*charts, *maps]:
        csv_name = catalog.chart_csv(chart.slug)
        with storage.atomic_file(directory / csv_name, "w") as handle:
            spreadsheet_safe(chart.data).to_csv(handle, index=False, lineterminator="\n")
        files[csv_name] = int(len(chart.data))
        if chart.figure is not None:
            images[chart.slug] = figure_png(chart.figure)
            image_name = catalog.chart_image(chart.slug)
            with storage.atomic_file(directory / image_name, "wb") as handle:
                handle.write(images[chart.slug])
            files[image_name] = len(images[chart.slug])
    change_counts = None if voter_changes is None else _write_change_voters(voter_changes, directory, files)
    page = render_html(sources, charts, images, config, tables, maps, change_counts)
    with storage.atomic_file(directory / catalog.REPORT_PAGE, "w") as handle:
        handle.write(page)
    files[catalog.REPORT_PAGE] = len(page)
    return ReportManifest(files=files, charts=[c.slug for c in [*charts, *maps]], charts_drawn=sorted(images),
                          cohort_config=Path(config.source).name).to_json()
