"""retract and rebuild: take a published snapshot out of the warehouse, and mark stage outputs so
that the next run rebuilds them (their manifests are renamed aside, the data stays for inspection)."""

from __future__ import annotations

from datetime import date

from voterpipe import catalog, storage
from voterpipe.tasks.publish import configured_warehouse

BUILT_STAGES = tuple(name for name in catalog.STAGES if name != "raw")


class NoSuchSnapshot(LookupError):
    """rebuild: neither a raw drop nor any stage output of the snapshot exists."""


def snapshot_exists(state: str, snapshot: date) -> bool:
    return any(catalog.stage(name).directory(state, snapshot).exists() for name in catalog.STAGES)


def mark_for_rebuild(state: str, snapshot: date, stages: tuple[str, ...]) -> list[str]:
    """Unpublish the named stages of (state, snapshot); return the ones that were published."""
    return [name for name in stages if storage.unpublish(catalog.stage(name).directory(state, snapshot))]


def retract_snapshot(state: str, snapshot: date) -> dict:
    """Remove the snapshot from the warehouse (the current_* views move back to the previous
    snapshot in the same transaction), then mark its stage outputs for rebuilding. Raises
    warehouse.SnapshotNotPublished when the warehouse does not hold it."""
    report = configured_warehouse().retract(state, snapshot)
    report["stages_marked"] = mark_for_rebuild(state, snapshot, BUILT_STAGES)
    return report


def rebuild_from(state: str, snapshot: date, stage: str) -> list[str]:
    """Mark `stage` and every stage downstream of it for rebuilding; return them (catalogue order)."""
    if not snapshot_exists(state, snapshot):
        raise NoSuchSnapshot(f"no snapshot {state} {snapshot.isoformat()}: neither a raw drop nor a stage "
                             f"output under {storage.data_root()}")
    if stage == "raw":
        raise ValueError("the raw drop is not built; rebuild from 'canonical' to import it again")
    stages = catalog.downstream(stage)
    mark_for_rebuild(state, snapshot, stages)
    return list(stages)
