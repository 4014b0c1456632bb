"""luigid's Prometheus metrics: Luigi's own task counters (luigi.contrib.prometheus_metric) plus
each stage's counts, which SnapshotTask.report_finished sends to the scheduler.

luigid loads it with [scheduler] metrics_collector = custom and metrics_custom_import =
voterpipe.ops.metrics.StageMetricsCollector (config/cron/luigid.cfg); /metrics serves both."""

from __future__ import annotations

from luigi.contrib.prometheus_metric import PrometheusMetricsCollector
from prometheus_client import Gauge

# counts name -> (metric, help); a stage reports those it measures (voterpipe/ops/counts.py)
STAGE_GAUGES = {
    "rows": ("voterpipe_stage_rows", "rows the stage wrote in its last run (voters, households, ...)"),
    "rejects": ("voterpipe_stage_rejects", "rows the stage rejected or could not resolve in its last run"),
    "match_rate": ("voterpipe_stage_match_rate", "geocode matches / parsed addresses sent, last run"),
    "duration_seconds": ("voterpipe_stage_duration_seconds", "the stage's last run time"),
}
LABELS = ("stage", "state")


class StageMetricsCollector(PrometheusMetricsCollector):
    """Luigi's Prometheus collector with one gauge per stage count, labelled by stage and state."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stage_gauges = {key: Gauge(name, text, LABELS, registry=self.registry)
                             for key, (name, text) in STAGE_GAUGES.items()}
        self.stage_snapshot = Gauge("voterpipe_stage_snapshot_timestamp_seconds",
                                    "the snapshot date of the stage's last run", LABELS, registry=self.registry)

    def handle_task_statistics(self, task, statistics):
        counts = statistics.get("counts") if isinstance(statistics, dict) else None
        if not isinstance(counts, dict):
            return
        labels = {"stage": str(statistics.get("stage", task.family)), "state": str(task.params.get("state", ""))}
        for key, gauge in self.stage_gauges.items():
            value = counts.get(key)
            if isinstance(value, (int, float)):
                gauge.labels(**labels).set(value)
        snapshot = task.params.get("snapshot")
        if snapshot:
            from datetime import datetime, timezone

            day = datetime.fromisoformat(str(snapshot)).replace(tzinfo=timezone.utc)
            self.stage_snapshot.labels(**labels).set(day.timestamp())
