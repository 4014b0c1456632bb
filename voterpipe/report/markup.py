"""HTML pieces of the report: escaped text, sortable tables (plain JavaScript inlined in the page,
no network), the page's screen and print style."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Clicking a header sorts its table by that column (again: the other way). Numeric cells carry
# their raw value in data-v so "1,234" and "12.5%" sort as numbers; blanks sort last.
SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, column) {
    th.tabIndex = 0;
    th.setAttribute('aria-sort', 'none');
    function sort() {
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('thead th').forEach(function (o) { o.setAttribute('aria-sort', 'none'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        if (cell.hasAttribute('data-v')) {
          var v = cell.getAttribute('data-v');
          return v === '' ? null : parseFloat(v);
        }
        return cell.textContent;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
        var order = typeof x === 'number' ? x - y : x.localeCompare(y, undefined, {numeric: true});
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') { sort(); } });
  });
});
"""

STYLE = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1080px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}
h1{margin-bottom:.1em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#555;margin-top:0}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f3f3f3}
td.h{overflow-wrap:anywhere;font-family:monospace;font-size:.85em}
td.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;white-space:nowrap}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
.wrap{overflow-x:auto}
.scroll{max-height:32em;overflow:auto;border:1px solid #eee}
.scroll thead th{position:sticky;top:0}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:150px}
.card b{display:block;font-size:1.5em}
.note{background:#f8f8f2;border-left:4px solid #c9c98f;padding:.5em 1em;font-size:.92em}
.missing{background:#f3f3f3;border-left:4px solid #888;padding:.5em 1em}
img{max-width:100%;height:auto;border:1px solid #eee}
code{font-size:.9em}
a{color:#0b559f}
@media print{
 @page{size:auto;margin:12mm}
 body{max-width:none;margin:0;font-size:9.5pt}
 a{color:#000}
 .wrap,.scroll{max-height:none;overflow:visible;border:0}
 table{width:100%;font-size:8pt;page-break-inside:auto}
 thead{display:table-header-group}
 tr,img,figure{page-break-inside:avoid;break-inside:avoid}
 h2,h3{page-break-after:avoid;break-after:avoid}
 img{max-width:100%;max-height:24cm}
}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def _cell(value: Any, kind: str | None) -> str:
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if kind is None or not number:
        long_token = isinstance(value, str) and len(value) > 32 and " " not in value  # checksums
        return f"<td class='h'>{esc(value)}</td>" if long_token else f"<td>{esc(value)}</td>"
    if pd.isna(value):
        return "<td class='n' data-v=''></td>"
    text = f"{value:.1%}" if kind == "pct" else f"{value:,.0f}"
    return f"<td class='n' data-v='{float(value)!r}'>{text}</td>"


def table_html(frame: pd.DataFrame, formats: dict[str, str] | None = None, sortable: bool = False,
               caption: str = "") -> str:
    """`formats`: column -> 'count' or 'pct' (right-aligned, sortable as numbers)."""
    formats = formats or {}
    head = "".join(f"<th scope='col'>{esc(c)}</th>" for c in frame.columns)
    kinds = [formats.get(c) for c in frame.columns]
    body = "".join("<tr>" + "".join(_cell(v, k) for v, k in zip(row, kinds)) + "</tr>"
                   for row in frame.itertuples(index=False))
    css = " class='sortable'" if sortable else ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    table = f"<table{css}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div class='{'wrap scroll' if len(frame) > 25 else 'wrap'}'>{table}</div>"


@dataclass
class ReportTable:
    """A table of the page with its CSV beside it (catalog.chart_csv(slug))."""

    slug: str
    title: str
    caption: str
    data: pd.DataFrame  # what the CSV holds
    shown: pd.DataFrame | None = None  # what the page shows (default: data)
    formats: dict[str, str] = field(default_factory=dict)
    empty_text: str = "Nothing to show."
