"""Everything the cohort stage produces for one snapshot: the tables (CohortTables), the same as
Arrow tables in their schemas by catalogue dataset name, and the stage's manifest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pyarrow as pa

from voterpipe import catalog, schema
from voterpipe.cohorts.config import CohortConfig, load_cohort_config
from voterpipe.cohorts.geography import code_forms as state_code_forms
from voterpipe.cohorts.geography import voter_households_and_geography
from voterpipe.cohorts.roll import Roll
from voterpipe.cohorts.rules import assign_cohorts
from voterpipe.cohorts.summaries import geocode_coverage_by_county, household_size_distribution, party_mix_by_cohort
from voterpipe.cohorts.transitions import TRANSITION_DIMENSIONS, snapshot_transitions
from voterpipe.cohorts.turnout import cohort_turnout
from voterpipe.cohorts.votes import VoteIndex, index_votes
from voterpipe.manifests import CohortManifest


@dataclass
class CohortTables:
    voter_cohorts: pd.DataFrame
    cohort_turnout: pd.DataFrame
    elections: pd.DataFrame
    household_sizes: pd.DataFrame
    household_party_mix: pd.DataFrame
    geocode_coverage: pd.DataFrame
    transitions: pd.DataFrame | None
    summary: dict  # the counts of CohortManifest, by field name
    # analysed in parts: cohort_turnout is None and this gives its rows an election at a time
    turnout_parts: Callable[[], Iterator[pd.DataFrame]] | None = None


def cohorts_for_roll(voters: pd.DataFrame, history: pd.DataFrame, snapshot: date,
                     config: CohortConfig) -> tuple[pd.DataFrame, VoteIndex, Roll]:
    """Per-voter cohorts for one roll and its history (no households or geography)."""
    roll = Roll(voters, config)
    votes = index_votes(voters["voter_id"], history, snapshot, config)
    return assign_cohorts(voters, votes, snapshot, config, roll), votes, roll


def analyse_cohorts(
    voters: pd.DataFrame, history: pd.DataFrame, voter_households: pd.DataFrame,
    households: pd.DataFrame, geocodes: pd.DataFrame, *, state: str, snapshot: date,
    config: CohortConfig | None = None, previous: pd.DataFrame | None = None, code_forms: dict | None = None,
) -> CohortTables:
    """All cohort outputs for one snapshot. `previous` is the earlier snapshot's voter_cohorts
    table (or the same columns rebuilt from its canonical files), or None. Districts take the
    state's canonical code form (`code_forms`, default: its shipped layouts' [canonical]), like the
    voters table."""
    config = config or load_cohort_config()
    cohorts, votes, roll = cohorts_for_roll(voters, history, snapshot, config)
    del history  # inputs dropped once used: freed when the caller keeps no reference (peak memory)
    forms = code_forms if code_forms is not None else state_code_forms(state)
    place = voter_households_and_geography(voters, voter_households, households, geocodes, forms)
    del voter_households, geocodes
    for column in place.columns:
        cohorts[column] = place[column].array
    del place
    if "precinct" in voters:  # the precinct turnout level (not a voter_cohorts column)
        cohorts["precinct"] = voters["precinct"].reset_index(drop=True).array
    del voters
    cohorts.insert(0, "snapshot", pd.Timestamp(snapshot))
    cohorts.insert(0, "state", state.lower())
    turnout = cohort_turnout(cohorts, votes, roll, state, config)
    dims = [d for d in config.dimensions() if d != "tenure_band"]
    transitions = None
    if previous is not None:
        transitions = snapshot_transitions(previous, cohorts, TRANSITION_DIMENSIONS)
    return CohortTables(
        voter_cohorts=cohorts,
        cohort_turnout=turnout,
        elections=votes.elections.copy(),
        household_sizes=household_size_distribution(households, config.household_top_size),
        household_party_mix=party_mix_by_cohort(cohorts, dims),
        geocode_coverage=geocode_coverage_by_county(cohorts),
        transitions=transitions,
        summary=_summary(cohorts, votes),
    )


def history_summary(voters: int, votes: VoteIndex) -> dict:
    """The summary's first keys: voters, history rows by fate, elections and the generals considered."""
    elections = votes.elections
    return {
        "voters": int(voters),
        "history_rows": int(votes.history_rows),
        "history_rows_not_on_roll": int(votes.orphan_rows),
        "history_rows_on_or_after_snapshot": int(votes.rows_after_snapshot),
        "history_rows_not_counted": int(votes.rows_not_counted),
        "elections": int(len(elections)),
        "generals_considered": [d.date().isoformat() for d in
                                elections.loc[elections["is_general_considered"], "election_date"].sort_values()],
    }


def _summary(cohorts: pd.DataFrame, votes: VoteIndex) -> dict:
    return {
        **history_summary(len(cohorts), votes),
        "age_methods": {k: int(v) for k, v in cohorts["age_method"].value_counts(sort=False).items() if v},
        "turnout_cohorts": {k: int(v) for k, v in cohorts["turnout_cohort"].value_counts(sort=False).items()},
        "district_sources": {k: int(v) for k, v in pd.Series(cohorts["district_source"]).value_counts().items()},
        "voters_geocoded": int(cohorts["geocoded"].sum()),
        "voters_with_household": int(cohorts["household_id"].notna().sum()),
        "denominator": "current roll, registered on or before election day (removed voters absent)",
    }


def _arrow(frame: pd.DataFrame, target: pa.Schema) -> pa.Table:
    columns = {}
    for field_ in target:
        if field_.name not in frame:
            continue
        series = frame[field_.name]
        if pa.types.is_date32(field_.type):
            series = pd.to_datetime(series, errors="coerce")
        columns[field_.name] = pa.array(series, from_pandas=True)
    if not columns:
        return schema.empty_table(target)
    return schema.conform(pa.table(columns), target)


def cohort_arrow_tables(tables: CohortTables, state: str, snapshot: date,
                        previous_snapshot: date | None = None) -> dict[str, pa.Table]:
    """Each table as Arrow in its schema (schema.VOTER_COHORTS, COHORT_TURNOUT, ...), by catalogue
    dataset name; 'transitions' only when there was a previous roll."""
    return {name: cohort_arrow_table(tables, name, state, snapshot, previous_snapshot)
            for name in cohort_dataset_names(tables)}


def cohort_dataset_names(tables: CohortTables) -> list[str]:
    """The catalogue datasets the tables fill ('transitions' only when there was a previous roll)."""
    return list(_SCHEMAS) + (["transitions"] if tables.transitions is not None else [])


_SCHEMAS = {"voter_cohorts": schema.VOTER_COHORTS, "cohort_turnout": schema.COHORT_TURNOUT,
            "elections": schema.COHORT_ELECTIONS, "household_sizes": schema.HOUSEHOLD_SIZES,
            "household_party_mix": schema.HOUSEHOLD_PARTY_MIX, "geocode_coverage": schema.GEOCODE_COVERAGE}


def cohort_arrow_table(tables: CohortTables, name: str, state: str, snapshot: date,
                       previous_snapshot: date | None = None) -> pa.Table:
    """One of the tables as Arrow in its schema (one at a time keeps a state's peak memory down)."""
    if name == "transitions":
        transitions = tables.transitions.copy()
        transitions["previous_snapshot"] = pd.Timestamp(previous_snapshot) if previous_snapshot else pd.NaT
        return _arrow(transitions, schema.COHORT_TRANSITIONS)
    if name == "cohort_turnout":
        return pa.concat_tables(cohort_turnout_arrow_parts(tables, state, snapshot))
    return _arrow(getattr(tables, name), _SCHEMAS[name])


def cohort_turnout_arrow_parts(tables: CohortTables, state: str, snapshot: date) -> Iterator[pa.Table]:
    """cohort_turnout as Arrow in its schema: the table, or its parts one at a time."""
    frames = [tables.cohort_turnout] if tables.turnout_parts is None else tables.turnout_parts()
    for frame in frames:
        yield _arrow(frame.assign(state=state.lower(), snapshot=pd.Timestamp(snapshot)), schema.COHORT_TURNOUT)


def voter_cohorts_arrow(frame: pd.DataFrame) -> pa.Table:
    """Rows of voter_cohorts (all of them, or a part's) as Arrow in schema.VOTER_COHORTS."""
    return _arrow(frame, schema.VOTER_COHORTS)


def cohort_manifest(tables: CohortTables, arrow_tables: dict[str, pa.Table | int], config: CohortConfig,
                    previous_snapshot: date | None = None) -> CohortManifest:
    """The stage's manifest: rows of each file written (`arrow_tables` from cohort_arrow_tables, or
    the rows written of each), the cohort definitions file, the snapshot compared with, and the
    summary counts."""
    stage = catalog.stage("cohorts")
    return CohortManifest(
        files={stage.dataset(name).file: table if isinstance(table, int) else table.num_rows
               for name, table in arrow_tables.items()},
        config=Path(config.source).name,
        previous_snapshot=previous_snapshot.isoformat() if previous_snapshot else None,
        **tables.summary,
    )
