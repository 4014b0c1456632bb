"""`voterpipe status`: every snapshot × stage as done, stale (and why), missing or failed (a
quality gate, an error), from the stage targets and their fingerprints; and what the warehouse
serves as current. Reads only: nothing is built or locked."""

from __future__ import annotations

import json
from datetime import date

from voterpipe import catalog, storage
from voterpipe.ops import failures

STAGES = tuple(catalog.STAGES)  # raw first, publish last
SHORT = {name: name for name in STAGES}  # column headings


def snapshots_of(state: str) -> list[date]:
    """Every snapshot with a raw drop or any stage directory, oldest first."""
    found = set()
    for name in STAGES:
        parent = catalog.stage(name).directory(state, date(2000, 1, 1)).parent
        if catalog.stage(name).subdir:
            parent = parent.parent
        for child in parent.iterdir() if parent.is_dir() else []:
            try:
                found.add(date.fromisoformat(child.name))
            except ValueError:
                continue
    return sorted(found)


def states_with_data() -> list[str]:
    found = set()
    for layer in storage.LAYERS:
        directory = storage.layer_dir(layer)
        if directory.is_dir():
            found.update(p.name for p in directory.iterdir() if p.is_dir())
    return sorted(found)


def _tasks_for(state: str, snapshot: date) -> dict:
    """The stage tasks as EnrichSnapshot builds them (with the previous drop where a stage compares)."""
    from voterpipe.tasks.base import task_class
    from voterpipe.tasks.imports import previous_drop

    previous = previous_drop(state, snapshot)
    tasks = {}
    for name in STAGES[1:]:
        cls = task_class(name)
        params = {"state": state, "snapshot": snapshot}
        if "previous" in cls.get_param_names():
            params["previous"] = previous
        tasks[name] = cls(**params)
    return tasks


def raw_cell(state: str, snapshot: date) -> dict:
    from voterpipe.tasks.imports import RawDrop

    target = RawDrop(state=state, snapshot=snapshot).output()
    if not target.path.is_dir():
        return {"status": "missing"}
    status = target.status()
    return {"status": "complete"} if status.complete else {"status": "incomplete", "why": [status.reason()]}


def stage_cell(name: str, task, memo: dict) -> dict:
    """done / stale (why) / failed gate / failed / missing for one stage task."""
    target = task.stage_target()
    try:
        current = task.fingerprint(memo)
    except Exception as exc:  # e.g. the raw drop's files are gone
        return {"status": "unknown", "why": [f"cannot fingerprint: {type(exc).__name__}: {exc}"]}
    if target.exists():
        recorded = target.fingerprint()
        if recorded is not None and recorded.value == current.value:
            if name == "publish" and not task.output().exists():
                return {"status": "stale", "why": ["the warehouse does not hold this slice (retracted?)"]}
            return {"status": "done"}
        return {"status": "stale", "why": current.changes_from(recorded)[:5]}
    failure = failures.read(task.state, task.snapshot, name)
    if failure and failure.get("fingerprint") in (None, current.value):
        kind = "failed gate" if failure.get("kind") == "gate" else "failed"
        return {"status": kind, "why": [failure.get("text", "")], "at": failure.get("time")}
    return {"status": "missing"}


def snapshot_row(state: str, snapshot: date) -> dict:
    row = {"raw": raw_cell(state, snapshot)}
    memo: dict = {}
    for name, task in _tasks_for(state, snapshot).items():
        row[name] = stage_cell(name, task, memo)
    return row


def warehouse_current() -> dict:
    """What the warehouse holds: per state the current (newest published) snapshot, its rows and
    when it was published, and the other snapshots it keeps."""
    from voterpipe.tasks.publish import configured_warehouse

    warehouse = configured_warehouse()
    try:
        rows = warehouse.publications()
    except Exception as exc:  # a DuckDB file being written, a server down
        return {"backend": warehouse.backend, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    by_state: dict[str, dict] = {}
    for row in rows:
        state, day = row["state"], str(row["snapshot"])
        entry = by_state.setdefault(state, {}).setdefault(day, {"tables": {}, "published_at": None})
        entry["tables"][row["table_name"]] = row.get("row_count")
        entry["published_at"] = str(row.get("published_at") or entry["published_at"] or "")[:19]
    result = {"backend": warehouse.backend, "states": {}}
    for state, days in sorted(by_state.items()):
        current = max(days)
        result["states"][state] = {"current": current, "published_at": days[current]["published_at"],
                                   "rows": days[current]["tables"], "snapshots": sorted(days)}
    return result


def status(state: str | None = None) -> dict:
    states = [state.lower()] if state else states_with_data()
    return {"data_root": str(storage.data_root()),
            "stages": list(STAGES),
            "states": {s: {d.isoformat(): snapshot_row(s, d) for d in snapshots_of(s)} for s in states},
            "warehouse": warehouse_current()}


def render(report: dict) -> str:
    """The table a person reads: one line per snapshot, a cell per stage, numbered notes below."""
    lines = [f"data root {report['data_root']}"]
    stages = report["stages"]
    for state, snapshots in report["states"].items():
        rows, notes = [["snapshot", *map(SHORT.get, stages)]], []
        for day, row in snapshots.items():
            cells = [day]
            for name in stages:
                cell = row[name]
                text = cell["status"]
                if cell.get("why"):
                    notes.append(f"  [{len(notes) + 1}] {day} {name} {cell['status']}: " + "; ".join(cell["why"]))
                    text += f" [{len(notes)}]"
                cells.append(text)
            rows.append(cells)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ["", f"state {state}", *("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)]
        lines += notes
    lines += ["", *render_warehouse(report["warehouse"])]
    return "\n".join(lines)


def render_warehouse(warehouse: dict) -> list[str]:
    if "error" in warehouse:
        return [f"warehouse ({warehouse['backend']}): not readable now: {warehouse['error']}"]
    if not warehouse["states"]:
        return [f"warehouse ({warehouse['backend']}): nothing published"]
    lines = [f"warehouse ({warehouse['backend']}), current snapshot per state:"]
    for state, entry in warehouse["states"].items():
        others = [d for d in entry["snapshots"] if d != entry["current"]]
        lines.append(f"  {state} {entry['current']}: {entry['rows'].get('voters_enriched', 0)} voters, published "
                     f"{entry['published_at']} UTC" + (f"; also holds {', '.join(others)}" if others else ""))
    return lines


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True, default=str)
