"""The base of every stage task: (state, snapshot) parameters; requires() and output() from the
catalogue; complete only when the recorded fingerprint equals the one the inputs give now."""

from __future__ import annotations

import logging
import re
import time
from datetime import date
from pathlib import Path

import luigi
import pyarrow as pa

from voterpipe import catalog, config, quality, schema, storage
from voterpipe.fingerprint import Fingerprint, config_file_hashes, layout_files_for_state, rule_version

log = logging.getLogger("voterpipe")
QUALITY_GATE_FAILURE = "QualityGateError: "  # how the scheduler's error text of a failed gate starts
GATES_FAILED = "gates.failed.json"  # every gate's value when one failed (the stage has no manifest)
_stale_logged: set[tuple] = set()


class StateParameter(luigi.Parameter):
    """A lowercase two-letter postal code."""

    def normalize(self, x):
        value = str(x).strip().lower()
        if not re.fullmatch(r"[a-z]{2}", value):
            raise ValueError(f"state must be a two-letter postal code, got {x!r}")
        return value


class StageTarget(luigi.Target):
    """A published stage directory: it exists iff its manifest was published with it (on the
    bucket for an s3:// data root, where `path` is the worker's local copy, filled by pull())."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._remote_manifest: dict | None = None  # read once per target object
        self._fetched = False

    def exists(self) -> bool:
        if storage.remote() is None:
            return storage.is_published(self.path)
        return self._published() is not None

    def _published(self) -> dict | None:
        if self._remote_manifest is None:
            self._remote_manifest = storage.published_manifest(self.path)
        return self._remote_manifest

    def file(self, name: str) -> Path:
        """A file of the stage; with an s3:// root the local copy is brought up to date first (once
        per target object), so a stage read outside the declared inputs works too."""
        if not self._fetched and storage.remote() is not None and self.exists():
            storage.pull(self.path)
            self._fetched = True
        return self.path / name

    def manifest(self) -> dict:
        if storage.remote() is None:
            return storage.read_manifest(self.path)
        found = self._published()
        if found is None:
            raise FileNotFoundError(f"{self.path} is not published on {storage.remote().url}")
        return found

    def fingerprint(self) -> Fingerprint | None:
        """The fingerprint the published stage recorded (None when absent or unreadable)."""
        try:
            return Fingerprint.from_json(self.manifest().get("fingerprint"))
        except (OSError, ValueError):
            return None

    def __repr__(self) -> str:
        return f"StageTarget({str(self.path)!r})"


def task_class(stage_name: str) -> type:
    """The Luigi task class producing a catalogue stage."""
    import voterpipe.tasks  # noqa: F401 - registers every task class

    return luigi.task_register.Register.get_task_cls(catalog.stage(stage_name).task)


class OptionalDateParameter(luigi.parameter.OptionalParameterMixin, luigi.DateParameter):
    """A date, or None (empty on the command line)."""

    expected_type = date


class PreviousSnapshot:
    """Mixin: the state's previous snapshot, an explicit input of the stages that compare with it."""

    previous = OptionalDateParameter(
        default=None, description="the previous snapshot to compare with (EnrichSnapshot takes "
                                  "the newest earlier raw drop); none: no transitions")


class SnapshotTask(luigi.Task):
    """One stage for one state's snapshot. Subclasses set `stage_name` and implement build()."""

    state = StateParameter(description="lowercase postal code, e.g. nc")
    snapshot = luigi.DateParameter(description="ISO date of the state's drop, e.g. 2026-11-01")

    stage_name: str = ""

    @property
    def stage(self) -> catalog.Stage:
        return catalog.stage(self.stage_name)

    def requires(self) -> dict:
        """The catalogue's inputs: upstream stages of this snapshot (by stage name) and, with
        --previous, the previous snapshot's stages ('previous_<stage>')."""
        needed = {name: self.clone(task_class(name)) for name in self.stage.inputs}
        previous = getattr(self, "previous", None)
        if previous is not None:
            for name in self.stage.previous_inputs:
                needed[f"previous_{name}"] = task_class(name)(state=self.state, snapshot=previous)
        return needed

    def stage_target(self) -> StageTarget:
        """The stage directory whose manifest records the fingerprint."""
        return StageTarget(self.stage.directory(self.state, self.snapshot))

    def output(self):
        return self.stage_target()

    # inputs and outputs by catalogue name -------------------------------------------------------
    def input_path(self, dataset: str, previous: bool = False) -> Path:
        owner, entry = catalog.dataset(dataset)
        return self.input()[f"previous_{owner.name}" if previous else owner.name].file(entry.file)

    def read(self, dataset: str, columns: list[str] | None = None, previous: bool = False) -> pa.Table:
        return storage.read_parquet(self.input_path(dataset, previous), columns=columns)

    def write(self, staging: Path, dataset: str, table: pa.Table) -> int:
        """Write one of this stage's datasets in its declared schema; return its rows."""
        entry = self.stage.dataset(dataset)
        if entry.schema is not None and not table.schema.equals(entry.schema):
            table = schema.conform(table, entry.schema)
        storage.write_parquet(table, Path(staging) / entry.file)
        return table.num_rows

    # identity and completeness -----------------------------------------------------------------
    def fingerprint(self, memo: dict | None = None) -> Fingerprint:
        """What this stage would read now: upstream fingerprints, raw checksums, settings, config
        files and rule versions."""
        memo = {} if memo is None else memo
        if self.task_id in memo:
            return memo[self.task_id]
        stage = self.stage
        parts = {"stage": stage.name, "state": self.state, "snapshot": self.snapshot.isoformat(),
                 "inputs": {name: task.fingerprint(memo).value for name, task in self.requires().items()
                            if isinstance(task, SnapshotTask)},
                 "settings": {s.section: config.state_values(s.section, self.state, s.options)
                              for s in stage.settings},
                 "config_files": config_file_hashes(self.config_files()),
                 "rules": {spec: rule_version(spec) for spec in stage.rules}}
        observed = {}
        if stage.hashes_raw_files:
            parts["raw"], observed["raw"] = self.raw_checksums()
        memo[self.task_id] = Fingerprint.of(parts, observed)
        return memo[self.task_id]

    def config_files(self) -> list[Path]:
        found = []
        if "formats" in self.stage.config_files:
            found += layout_files_for_state(config.formats_dirs(), self.state)
        if "cohorts" in self.stage.config_files:
            found.append(config.cohorts_path())
        return found

    def raw_checksums(self) -> tuple[dict, dict]:
        raise NotImplementedError(f"{self.task_family} hashes no raw files")

    def complete(self) -> bool:
        target = self.stage_target()
        if not target.exists():
            return False
        recorded, current = target.fingerprint(), self.fingerprint()
        if recorded is not None and recorded.value == current.value:
            return True
        key = (self.task_id, recorded.value if recorded else None, current.value)
        if key not in _stale_logged:
            _stale_logged.add(key)
            log.info("%s %s %s is out of date and reruns: %s", self.task_family, self.state,
                     self.snapshot, "; ".join(current.changes_from(recorded)[:10]))
        return False

    def run(self) -> None:
        started = time.monotonic()
        with storage.private_files(), storage.synced_caches():
            self.pull_inputs()
            self.run_stage()
        self.report_finished(time.monotonic() - started)

    def pull_inputs(self) -> None:
        """With an s3:// data root: bring the input stages and raw drop into the local scratch copy."""
        if storage.remote() is None:
            return
        for target in luigi.task.flatten(self.input()):
            if isinstance(target, StageTarget) or hasattr(target, "path"):
                storage.pull(target.path)

    def run_stage(self) -> None:
        fingerprint = self.fingerprint()
        with storage.publish_dir(self.stage_target().path) as staging:
            body = self.build(staging)
            storage.write_manifest(staging, {
                "stage": self.task_family, "state": self.state, "snapshot": self.snapshot.isoformat(),
                "fingerprint": fingerprint.to_json(), **body})
        self.check_inputs_unchanged(fingerprint)

    def check_inputs_unchanged(self, fingerprint: Fingerprint) -> None:
        """Fail with the reason when what the stage read changed while it ran (a raw file still
        being copied, a config file edited): its output is then already out of date."""
        now = self.fingerprint()
        if now.value != fingerprint.value:
            raise RuntimeError(
                f"{self.task_family} {self.state} {self.snapshot}: its inputs changed while it ran "
                f"({'; '.join(now.changes_from(fingerprint)[:5])}); the output it wrote is out of "
                "date, rerun to rebuild it")

    def build(self, staging: Path) -> dict:
        """Write this stage's files into `staging`; return the manifest body."""
        raise NotImplementedError

    # quality gates -------------------------------------------------------------------------------
    def thresholds(self) -> dict:
        """This state's [quality] thresholds ([quality.<state>] overrides [quality])."""
        return config.state_values("quality", self.state, config.QUALITY_GATES)

    def enforce_gates(self, results: list) -> list[dict]:
        """The gate records for the manifest; a failed gate not accepted with --accept fails the
        stage before anything is published (quality.QualityGateError)."""
        for result in results:
            log.info("%s %s %s: quality gate %s", self.task_family, self.state, self.snapshot,
                     result.describe() + (" ACCEPTED" if result.accepted else "" if result.passed else " FAILED"))
        try:
            return quality.enforce(results, self.stage.name, self.state, self.snapshot.isoformat())
        except quality.QualityGateError as failure:
            # the stage is not published, but what was measured is kept beside where it would be
            record = self.stage_target().path / GATES_FAILED
            storage.write_json({"stage": self.task_family, "state": self.state,
                                "snapshot": self.snapshot.isoformat(),
                                "gates": [r.to_json() for r in results]}, record)
            storage.push_file(record)
            failure.record = record
            raise

    def accepted(self) -> tuple[str, ...]:
        return quality.accepted_gates(config.quality().accept)

    def on_failure(self, exception):
        if isinstance(exception, quality.QualityGateError):
            where = getattr(exception, "record", None)
            return f"{QUALITY_GATE_FAILURE}{exception}" + (f"\nEvery gate's value: {where}" if where else "")
        return super().on_failure(exception)

    def report_finished(self, seconds: float) -> None:
        """100% and the stage's counts (rows, rejects, match rate, duration) to the scheduler,
        which luigid turns into metrics (voterpipe/ops/metrics.py)."""
        from voterpipe.ops.counts import format_counts, stage_counts

        counts = dict(stage_counts(self.stage.name, self.stage_target().manifest()), duration_seconds=round(seconds, 3))
        self.set_progress_percentage(100)
        if not getattr(self, "_reported_done", False):  # the stage's own last word was not a 100% one
            self.set_status_message(f"done: {format_counts(counts)}")
        reporter = getattr(self.set_status_message, "__self__", None)  # luigi's TaskStatusReporter
        if hasattr(reporter, "report_task_statistics"):
            try:
                reporter.report_task_statistics({"stage": self.stage.name, "counts": counts})
            except Exception as exc:  # metrics are not worth failing a stage for
                log.warning("%s: stage counts not sent to the scheduler: %s", self.task_family, exc)

    def progress(self, fraction: float, message: str) -> None:
        """Report progress to the scheduler (visible in the luigid visualiser)."""
        self.set_progress_percentage(max(0, min(100, round(100 * fraction))))
        self.set_status_message(message)
        self._reported_done = fraction >= 1.0
        log.info("%s %s %s: %s", self.task_family, self.state, self.snapshot, message)
