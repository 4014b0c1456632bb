"""Quality gates: named measurements a stage must keep within thresholds ([quality] in luigi.cfg)
before it is published. Pure functions over manifests and counts; the tasks call them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Reasons a value is nulled that lose nothing: the raw value itself meant "unknown".
HARMLESS_NULLING = ("placeholder", "dummy_phone")
# Lines dropped on purpose because they are not records (a Florida "did not vote" history line).
NOT_RECORDS = ("not_a_vote",)
PARSED_STATUSES = ("ok", "po_box", "rural_route")


@dataclass
class GateResult:
    """One gate's measured value against its threshold. `limit`: 'max' (value <= threshold),
    'min' (value >= threshold) or 'max_abs' (|value| <= threshold). A None value (nothing to
    measure, such as a first snapshot) passes."""

    name: str
    value: float | None
    threshold: float
    limit: str
    passed: bool
    accepted: bool = False  # failed, but accepted for this run (--accept)
    detail: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        bound = {"max": "at most ", "min": "at least ", "max_abs": "at most ±"}[self.limit]
        value = "not measured" if self.value is None else f"{self.value:.4f}"
        text = f"{self.name} = {value} (threshold: {bound}{self.threshold:g})"
        return f"{text}; {self.detail}" if self.detail else text


def gate(name: str, value: float | None, threshold: float, limit: str, detail: str = "",
         accept: tuple[str, ...] = ()) -> GateResult:
    if value is None:
        passed = True
    elif limit == "max":
        passed = value <= threshold
    elif limit == "min":
        passed = value >= threshold
    elif limit == "max_abs":
        passed = abs(value) <= threshold
    else:
        raise ValueError(f"unknown gate limit {limit!r}")
    return GateResult(name, None if value is None else round(float(value), 6), float(threshold), limit,
                      passed, accepted=not passed and name in accept, detail=detail)


class QualityGateError(RuntimeError):
    """A gate failed and was not accepted: the stage is not published."""

    def __init__(self, stage: str, state: str, snapshot: str, failed: list[GateResult]):
        self.stage, self.state, self.snapshot, self.failed = stage, state, snapshot, failed
        lines = [f"quality gate {r.name} failed for {state} {snapshot} (stage {stage}): {r.describe()}"
                 for r in failed]
        names = " ".join(f"--accept {r.name}" for r in failed)
        options = ", ".join(r.name for r in failed)
        lines.append(f"The warehouse keeps the previous snapshot. To override: rerun with "
                     f"`voterpipe run --state {state} --snapshot {snapshot} {names}` (recorded in the "
                     f"manifest), or change {options} in luigi.cfg [quality] (or [quality.{state}]).")
        super().__init__("\n".join(lines))


def enforce(results: list[GateResult], stage: str, state: str, snapshot: str) -> list[dict]:
    """The results as manifest records; raises QualityGateError when a gate failed unaccepted."""
    failed = [r for r in results if not r.passed and not r.accepted]
    if failed:
        raise QualityGateError(stage, state, snapshot, failed)
    return [r.to_json() for r in results]


def accepted_gates(text: str) -> tuple[str, ...]:
    """'a, b' -> ('a', 'b')."""
    return tuple(part.strip() for part in str(text).replace(";", ",").split(",") if part.strip())


# ---- the gates, by the stage that runs them -------------------------------------------------------

def rejected_lines_gate(files: list[dict], threshold: float, accept=()) -> GateResult:
    """Rejected lines over lines read, over every file of the drop (not-a-record lines apart)."""
    read = rejected = skipped = 0
    worst = ("", 0.0)
    for record in files:
        not_records = sum(n for reason, n in record.get("rejected_by_reason", {}).items() if reason in NOT_RECORDS)
        file_read = record.get("rows_read", 0) - not_records - (record.get("rows_skipped") or 0)
        file_rejected = record.get("rows_rejected", 0) - not_records
        read, rejected, skipped = read + file_read, rejected + file_rejected, skipped + not_records
        if file_read and file_rejected / file_read > worst[1]:
            worst = (record.get("name", ""), file_rejected / file_read)
    detail = f"{rejected} of {read} lines rejected"
    if worst[0]:
        detail += f"; worst file {worst[0]} at {worst[1]:.2%}"
    return gate("rejected_lines", rejected / read if read else None, threshold, "max", detail, accept)


def column_nulled_gate(files: list[dict], non_null: dict[str, dict[str, int]], threshold: float,
                       accept=(), sources: dict[tuple[str, str], str] | None = None) -> GateResult:
    """The largest share of a raw column's non-empty values that the import nulled (a bad ZIP, an
    impossible date). `non_null`: role -> canonical column -> values loaded non-null. `sources`:
    (role, canonical column) -> the raw column it is read from; canonical columns read from one raw
    column (a ZIP gives res_zip5 and res_zip4) count that column's values once."""
    nulled: dict[tuple[str, str], dict[str, int]] = {}
    for record in files:
        for column, reasons in record.get("values_nulled", {}).items():
            counts = nulled.setdefault((record.get("role", ""), column), {})
            for reason, n in reasons.items():
                if reason not in HARMLESS_NULLING:
                    counts[reason] = counts.get(reason, 0) + n
    groups: dict[tuple[str, str], list] = {}
    for (role, column), reasons in nulled.items():
        kept = non_null.get(role, {}).get(column)
        if sum(reasons.values()) and kept is not None:
            raw = (sources or {}).get((role, column), column)
            groups.setdefault((role, raw), []).append((sum(reasons.values()), kept, column, reasons))
    rates = []
    for (role, raw), columns in groups.items():
        lost, _, column, reasons = max(columns)
        kept = max(entry[1] for entry in columns)
        rates.append((lost / (lost + kept), role, column, raw, reasons))
    if not rates:
        return gate("column_nulled", 0.0, threshold, "max", "no values nulled", accept)
    rate, role, column, raw, reasons = max(rates)
    why = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
    source = f" (raw column {raw!r})" if raw != column else ""
    return gate("column_nulled", rate, threshold, "max",
                f"{role}.{column}{source} lost {rate:.1%} of its non-empty values ({why})", accept)


def address_parse_gate(voters_by_parse_status: dict[str, int], threshold: float, accept=()) -> GateResult:
    """Voters whose residential address parsed (a street address, PO box or rural route), among
    voters with an address."""
    with_address = sum(n for status, n in voters_by_parse_status.items() if status != "missing")
    parsed = sum(voters_by_parse_status.get(status, 0) for status in PARSED_STATUSES)
    return gate("address_parse_rate", parsed / with_address if with_address else None, threshold, "min",
                f"{parsed} of {with_address} voters with an address", accept)


def geocode_match_gate(rates_by_parse_status: dict[str, dict], threshold: float, accept=(),
                       rates_by_county: dict[str, dict] | None = None) -> GateResult:
    """The match rate among addresses that parsed as street addresses and were sent; the detail
    names the county matched worst (TIGER data that misses a county shows there first)."""
    ok = rates_by_parse_status.get("ok") or {}
    sent = ok.get("match", 0) + ok.get("no_match", 0) + ok.get("tie", 0)
    value = ok.get("match", 0) / sent if sent else None
    detail = f"{ok.get('match', 0)} of {sent} parsed addresses matched"
    measured = [(rates["match_rate"], county, rates.get("addresses", 0))
                for county, rates in (rates_by_county or {}).items() if rates.get("match_rate") is not None]
    if len(measured) > 1:
        rate, county, addresses = min(measured)
        detail += f"; worst county {county} at {rate:.1%} of {addresses} addresses"
    return gate("geocode_match_rate", value, threshold, "min", detail, accept)


def voter_count_gate(voters: int, previous_voters: int | None, previous: str | None, threshold: float,
                     accept=()) -> GateResult:
    """Voters in this snapshot against the previous one (none: not measured)."""
    if not previous_voters:
        return gate("voter_count_change", None, threshold, "max_abs", "no previous snapshot", accept)
    return gate("voter_count_change", voters / previous_voters - 1.0, threshold, "max_abs",
                f"{voters} voters against {previous_voters} in {previous}", accept)


def history_not_on_roll_gate(history_rows: int, not_on_roll: int, threshold: float, accept=()) -> GateResult:
    return gate("history_not_on_roll", not_on_roll / history_rows if history_rows else None, threshold, "max",
                f"{not_on_roll} of {history_rows} history rows name a voter not in the voter file", accept)
