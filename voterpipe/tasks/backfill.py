"""EnrichAll (every complete drop of a state, oldest first) and EnrichStates (several states in
one run; `--workers N` runs them in parallel). Importing this also registers the stage event
handlers (operations log line, alerts; voterpipe/ops/events.py)."""

from __future__ import annotations

from datetime import date

import luigi

from voterpipe import catalog, storage
from voterpipe.tasks.base import StateParameter
from voterpipe.tasks.enrich import EnrichSnapshot
from voterpipe.tasks.imports import RawDrop, previous_drop

import voterpipe.ops.events  # noqa: F401,E402 - registers the handlers on every stage


def drop_dates(state: str) -> list[date]:
    """Every snapshot directory under 01_raw/<state>/, oldest first (complete or not)."""
    parent = catalog.stage("raw").directory(state, date(2000, 1, 1)).parent
    found = []
    for child in storage.child_names(parent):  # on the bucket for an s3:// data root
        try:
            found.append(date.fromisoformat(child))
        except ValueError:
            continue
    return sorted(found)


def complete_drops(state: str) -> list[date]:
    """The state's complete drops (the drop-completeness rule of RawDrop), oldest first."""
    return [day for day in drop_dates(state) if RawDrop(state=state, snapshot=day).complete()]


class StatesParameter(luigi.Parameter):
    """'nc,oh' on the command line; a tuple of lowercase postal codes in Python."""

    def parse(self, x):
        return tuple(part.strip() for part in str(x).split(",") if part.strip())

    def normalize(self, x):
        values = self.parse(x) if isinstance(x, str) else tuple(x)
        return tuple(dict.fromkeys(StateParameter().normalize(v) for v in values))

    def serialize(self, x):
        return ",".join(x)


class EnrichInOrder(luigi.Task):
    """EnrichSnapshot of one drop, started only once the state's earlier complete drops are
    enriched, so the warehouse's current snapshot only moves forward."""

    state = StateParameter()
    snapshot = luigi.DateParameter()

    def requires(self):
        earlier = previous_drop(self.state, self.snapshot)
        return EnrichInOrder(state=self.state, snapshot=earlier) if earlier else []

    def complete(self) -> bool:
        return EnrichSnapshot(state=self.state, snapshot=self.snapshot).complete()

    def run(self):
        yield EnrichSnapshot(state=self.state, snapshot=self.snapshot)


class EnrichAll(luigi.WrapperTask):
    """`luigi --module voterpipe.tasks EnrichAll --state nc`: every complete drop under
    01_raw/<state>/ in date order (incomplete drops wait for a later run)."""

    state = StateParameter(description="lowercase postal code, e.g. nc")

    def requires(self):
        return [EnrichInOrder(state=self.state, snapshot=day) for day in complete_drops(self.state)]


class EnrichStates(luigi.WrapperTask):
    """`luigi --module voterpipe.tasks EnrichStates --states nc,oh --workers 2`."""

    states = StatesParameter(description="comma-separated postal codes")

    def requires(self):
        return [EnrichAll(state=state) for state in self.states]
