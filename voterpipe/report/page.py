"""The report page: one self-contained HTML file (charts inline as base64 PNG), and write_report(),
which writes it with each chart's CSV and PNG beside it through voterpipe.storage."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from voterpipe import catalog, storage
from voterpipe.cohorts import CohortConfig, load_cohort_config
from voterpipe.manifests import ReportManifest
from voterpipe.report.charts import Chart, build_charts, figure_png
from voterpipe.report.sources import ReportSources

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


def _summary_cards(sources: ReportSources) -> str:
    statuses = sources.registrations.groupby("status")["voters"].sum()
    voters = int(statuses.sum())
    geocoded = sources.cohort_manifest.voters_geocoded
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
    counts = sources.cohort_manifest.turnout_cohorts
    if not counts:
        return ""
    total = sum(counts.values()) or 1
    frame = pd.DataFrame(
        [(config.turnout_labels.get(code, code), counts.get(code, 0), f"{counts.get(code, 0) / total:.1%}")
         for code in config.turnout_order], columns=["Turnout cohort", "Voters", "Share"])
    return _table_html(frame, {"Voters"})


def _source_files(sources: ReportSources) -> list[str]:
    provenance = sources.provenance.copy()
    if len(provenance):
        provenance["sha256"] = provenance["sha256"].astype(object).where(provenance["sha256"].notna(), "(not recorded)")
    provenance = provenance.rename(columns={
        "file": "File", "role": "Role", "rows_read": "Rows read", "rows_loaded": "Rows loaded",
        "rows_rejected": "Rows rejected", "sha256": "SHA-256"})
    layout = sources.import_manifest.layout
    return [
        "<h2>Source files</h2>",
        "<p>The state's files this snapshot was built from" + _esc(f" (layout {layout})" if layout else "")
        + ". Rows read = rows loaded + rows rejected; the figures and SHA-256 checksums come from the "
        "import stage's manifest.</p>",
        (_table_html(provenance, {"Rows read", "Rows loaded", "Rows rejected"}) if len(provenance)
         else "<p>No source files recorded.</p>"),
    ]


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


def _chart_section(chart: Chart, image: bytes | None, sources: ReportSources) -> list[str]:
    parts = [f"<h2 id='{_esc(chart.slug)}'>{_esc(chart.title)}</h2>"]
    if image is not None:
        encoded = base64.b64encode(image).decode("ascii")
        parts.append(f"<img alt='{_esc(chart.title)}' src='data:image/png;base64,{encoded}'>")
    parts.append(f"<p>{_esc(chart.caption)}</p>")
    csv_name = catalog.chart_csv(chart.slug)
    parts.append(f"<p>Data: <a href='{_esc(csv_name)}'>{_esc(csv_name)}</a></p>")
    if chart.slug == "07_snapshot_changes" and sources.transitions is not None:
        switches = sources.transitions[sources.transitions["dimension"] == "party_switch"]
        if len(switches):
            top = switches.sort_values("voters", ascending=False).head(10)[["cohort", "voters"]]
            parts.append("<h3>Most common party switches</h3>")
            parts.append(_table_html(top.rename(columns={"cohort": "From -> to", "voters": "Voters"}), {"Voters"}))
    return parts


def render_html(sources: ReportSources, charts: list[Chart], images: dict[str, bytes], config: CohortConfig) -> str:
    title = f"{sources.state.upper()} voter file snapshot {sources.snapshot.isoformat()}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(sources.state.upper())} voter file: snapshot of {_esc(sources.snapshot.isoformat())}</h1>",
        "<p class='sub'>Registration, turnout, household and geocoding summary of one state drop, "
        "produced by voterpipe. Every chart's numbers are in the CSV file linked below it.</p>",
        _summary_cards(sources),
        *_source_files(sources),
        *_reading_notes(sources, config),
    ]
    for chart in charts:
        parts += _chart_section(chart, images.get(chart.slug), sources)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(sources: ReportSources, directory: Path, config: CohortConfig | None = None) -> dict:
    """Write the page (catalog.REPORT_PAGE), and each chart's CSV and PNG, into `directory`.
    Returns the manifest body (manifests.ReportManifest): files written and the charts drawn."""
    config = config or load_cohort_config()
    directory = Path(directory)
    charts = build_charts(sources, config)
    images: dict[str, bytes] = {}
    files = {}
    for chart in charts:
        csv_name = catalog.chart_csv(chart.slug)
        with storage.atomic_file(directory / csv_name, "w") as handle:
            chart.data.to_csv(handle, index=False, lineterminator="\n")
        files[csv_name] = int(len(chart.data))
        if chart.figure is not None:
            images[chart.slug] = figure_png(chart.figure)
            image_name = catalog.chart_image(chart.slug)
            with storage.atomic_file(directory / image_name, "wb") as handle:
                handle.write(images[chart.slug])
            files[image_name] = len(images[chart.slug])
    page = render_html(sources, charts, images, config)
    with storage.atomic_file(directory / catalog.REPORT_PAGE, "w") as handle:
        handle.write(page)
    files[catalog.REPORT_PAGE] = len(page)
    return ReportManifest(files=files, charts=[c.slug for c in charts], charts_drawn=sorted(images),
                          cohort_config=Path(config.source).name).to_json()
