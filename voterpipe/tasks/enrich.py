"""EnrichSnapshot: the task cron runs; it requires every stage through publication."""

from __future__ import annotations

import luigi

from voterpipe.tasks.base import PreviousSnapshot, StateParameter
from voterpipe.tasks.cohorts import ReportSnapshot
from voterpipe.tasks.imports import previous_drop
from voterpipe.tasks.publish import PublishSnapshot


class EnrichSnapshot(PreviousSnapshot, luigi.WrapperTask):
    """`luigi --module voterpipe.tasks EnrichSnapshot --state nc --snapshot 2026-11-01`.

    Without --previous, the previous snapshot is the newest earlier raw drop of the state, so
    the outputs do not depend on the order in which snapshots are processed."""

    state = StateParameter(description="lowercase postal code, e.g. nc")
    snapshot = luigi.DateParameter(description="ISO date of the state's drop")

    def requires(self):
        previous = self.previous or previous_drop(self.state, self.snapshot)
        return [task(state=self.state, snapshot=self.snapshot, previous=previous)
                for task in (ReportSnapshot, PublishSnapshot)]
