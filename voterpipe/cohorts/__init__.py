"""Cohort analysis of one snapshot: age bands, generations, tenure and turnout cohorts per voter;
turnout by cohort and geography with as-of-election denominators; household summaries; changes
since the previous snapshot. Pure functions over tables; the definitions are config/cohorts.toml.

Rooms: config and bands (the definitions), roll and votes (the roll and its history as arrays),
rules (per-voter cohorts), geography (households, districts, tracts), turnout, summaries,
transitions, analysis (everything for one snapshot, as Arrow tables, and the manifest).
Everything is vectorised (numpy bincount over integer codes), so a 1M-voter state with several
elections of history takes seconds.
"""

RULES_VERSION = "3"  # bump when a rule here changes what the stage writes (stage identity)

from voterpipe.cohorts.analysis import (  # noqa: E402
    CohortTables, analyse_cohorts, cohort_arrow_table, cohort_arrow_tables, cohort_dataset_names, cohort_manifest,
    cohort_turnout_arrow_parts, cohorts_for_roll, voter_cohorts_arrow,
)
from voterpipe.cohorts.bands import Band, band_codes, band_labels, check_bands  # noqa: E402
from voterpipe.cohorts.config import (  # noqa: E402
    DEFAULT_CONFIG_PATH, TURNOUT_CODES, CohortConfig, load_cohort_config,
)
from voterpipe.cohorts.geography import (  # noqa: E402
    DISTRICT_COLUMNS, NO_HOUSEHOLD, normalise_district, voter_households_and_geography,
)
from voterpipe.cohorts.roll import Roll  # noqa: E402
from voterpipe.cohorts.rules import assign_cohorts, cohort_categories, turnout_cohort_codes  # noqa: E402
from voterpipe.cohorts.summaries import (  # noqa: E402
    geocode_coverage_by_county, household_size_distribution, party_mix_by_cohort,
)
from voterpipe.cohorts.transitions import (  # noqa: E402
    TRANSITION_CHANGES, TRANSITION_DIMENSIONS, snapshot_transitions,
)
from voterpipe.cohorts.streamed import VOTERS_PER_PART, CohortFiles, analyse_cohorts_in_parts  # noqa: E402
from voterpipe.cohorts.turnout import GEOGRAPHY_LEVELS, cohort_turnout  # noqa: E402
from voterpipe.cohorts.votes import VoteIndex, index_votes  # noqa: E402

__all__ = [
    "RULES_VERSION", "DEFAULT_CONFIG_PATH", "GEOGRAPHY_LEVELS", "DISTRICT_COLUMNS", "TURNOUT_CODES",
    "TRANSITION_CHANGES", "TRANSITION_DIMENSIONS", "NO_HOUSEHOLD",
    "Band", "CohortConfig", "load_cohort_config", "check_bands", "band_codes", "band_labels",
    "Roll", "VoteIndex", "index_votes", "turnout_cohort_codes", "assign_cohorts", "cohort_categories",
    "cohorts_for_roll",
    "normalise_district", "voter_households_and_geography", "cohort_turnout",
    "household_size_distribution", "party_mix_by_cohort", "geocode_coverage_by_county",
    "snapshot_transitions", "CohortTables", "analyse_cohorts", "cohort_arrow_table", "cohort_arrow_tables",
    "cohort_dataset_names", "cohort_manifest", "voter_cohorts_arrow", "cohort_turnout_arrow_parts",
    "VOTERS_PER_PART", "CohortFiles", "analyse_cohorts_in_parts",
]
