"""Luigi tasks, one thin module per stage. `luigi --module voterpipe.tasks EnrichSnapshot ...`."""

from voterpipe.tasks.base import SnapshotTask, StageTarget  # noqa: F401
from voterpipe.tasks.imports import ImportSnapshot  # noqa: F401
