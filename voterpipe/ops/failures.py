"""The last failure of a stage (a failed quality gate or an error), kept beside the data so that
`voterpipe status` can say why a stage is missing: <data_root>/ops/failures/<state>/<snapshot>/<stage>.json.
Written by the stage event handlers, removed when the stage next succeeds."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timezone
from pathlib import Path

from voterpipe import storage


def record_path(state: str, snapshot: date | str, stage: str) -> Path:
    day = snapshot.isoformat() if isinstance(snapshot, date) else str(snapshot)
    return storage.data_root() / "ops" / "failures" / state / day / f"{stage}.json"


def record(state: str, snapshot, stage: str, kind: str, text: str, fingerprint: str | None, **extra) -> None:
    """kind: 'gate' or 'error'; `fingerprint` is what the stage would have recorded."""
    path = record_path(state, snapshot, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.write_json({"kind": kind, "text": text, "fingerprint": fingerprint,
                        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}, path)


def clear(state: str, snapshot, stage: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path(state, snapshot, stage).unlink()


def read(state: str, snapshot, stage: str) -> dict | None:
    path = record_path(state, snapshot, stage)
    try:
        return storage.read_json(path)
    except (OSError, ValueError):
        return None
