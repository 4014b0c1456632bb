"""Luigi tasks, one thin module per stage. `luigi --module voterpipe.tasks EnrichSnapshot ...`."""

from voterpipe.tasks.base import SnapshotTask, StageTarget  # noqa: F401
from voterpipe.tasks.imports import ImportSnapshot, RawDrop  # noqa: F401
from voterpipe.tasks.addresses import NormaliseAddresses  # noqa: F401
from voterpipe.tasks.households import BuildHouseholds  # noqa: F401
from voterpipe.tasks.geocode import GeocodeAddresses  # noqa: F401
from voterpipe.tasks.cohorts import AnalyseCohorts, ReportSnapshot  # noqa: F401
from voterpipe.tasks.voter_file import BuildVoterFile  # noqa: F401
from voterpipe.tasks.publish import PublishSnapshot  # noqa: F401
from voterpipe.tasks.enrich import EnrichSnapshot  # noqa: F401
from voterpipe.tasks.backfill import EnrichAll, EnrichStates  # noqa: F401
