"""A stage's headline counts, read from its manifest: what the cron log line, the luigid metrics
and the alerts carry. Aggregates only, never a voter's data."""

from __future__ import annotations


def _sum(values) -> int:
    return int(sum(v for v in values if isinstance(v, (int, float))))


def stage_counts(stage: str, manifest: dict) -> dict[str, float]:
    """{'rows': ..., 'rejects': ..., 'match_rate': ...} as far as the stage measures them."""
    if stage == "canonical":
        totals = manifest.get("totals", {})
        return {"rows": totals.get("voters_loaded", 0), "history_rows": totals.get("history_loaded", 0),
                "rejects": totals.get("rows_rejected", 0)}
    if stage == "addresses":
        by_status = manifest.get("voters_by_parse_status", {})
        return {"rows": manifest.get("voters", 0), "addresses": manifest.get("addresses", 0),
                "rejects": by_status.get("unparseable", 0) + by_status.get("ambiguous", 0)}
    if stage == "geocoded":
        status = manifest.get("status_counts", {})
        sent = status.get("match", 0) + status.get("no_match", 0) + status.get("tie", 0)
        counts = {"rows": manifest.get("rows", 0), "rejects": sent - status.get("match", 0),
                  "cache_hits": manifest.get("cache_hits", 0)}
        if sent:
            counts["match_rate"] = round(status.get("match", 0) / sent, 4)
        return counts
    if stage == "households":
        return {"rows": manifest.get("households", 0), "voters": manifest.get("voters_in_households", 0)}
    if stage == "cohorts":
        return {"rows": manifest.get("voters", 0), "history_rows": manifest.get("history_rows", 0),
                "rejects": manifest.get("history_rows_not_on_roll", 0)}
    if stage == "voter_file":
        return {"rows": manifest.get("rows", 0)}
    if stage == "report":
        return {"rows": len(manifest.get("charts_drawn", []))}
    if stage == "publish":
        rows = manifest.get("rows", {})
        return {"rows": rows.get("voters_enriched", 0), "table_rows": _sum(rows.values())}
    return {}


def format_counts(counts: dict) -> str:
    return " ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                    for name, value in counts.items())
