"""The snapshot report: one self-contained HTML page for a campaign analyst (charts drawn with
matplotlib's Agg backend, inline as base64 PNG), and each chart's numbers as CSV beside it.

Rooms: sources (what the report reads, through the typed manifests), charts, page (the HTML and
write_report); changes (snapshot changes voter by voter); sections, quality, maps, markup. It reads
only its declared inputs: 02_canonical, 03_addresses, 04_geocoded and 06_cohorts, and the previous
snapshot's 02_canonical and 03_addresses.
"""

RULES_VERSION = "2"  # bump when a rule here changes what the stage writes (stage identity)

from voterpipe.report.charts import Chart, build_charts  # noqa: E402
from voterpipe.report.page import render_html, write_report  # noqa: E402
from voterpipe.report.sources import ReportSources, file_provenance  # noqa: E402

__all__ = ["RULES_VERSION", "Chart", "ReportSources", "build_charts", "file_provenance", "render_html", "write_report"]
