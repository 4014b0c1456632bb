"""EnrichSnapshot: the task cron runs; it requires every stage through publication."""

from __future__ import annotations

import luigi

from voterpipe.tasks.base import StateParameter
from voterpipe.tasks.cohorts import ReportSnapshot
from voterpipe.tasks.publish import PublishSnapshot


class EnrichSnapshot(luigi.WrapperTask):
    """`luigi --module voterpipe.tasks EnrichSnapshot --state nc --snapshot 2026-11-01`."""

    state = StateParameter(description="lowercase postal code, e.g. nc")
    snapshot = luigi.DateParameter(description="ISO date of the state's drop")

    def requires(self):
        return [ReportSnapshot(state=self.state, snapshot=self.snapshot),
                PublishSnapshot(state=self.state, snapshot=self.snapshot)]
