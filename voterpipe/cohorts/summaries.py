"""Household and coverage summaries of one snapshot: household sizes, the party mix of voters'
households by cohort, and geocode coverage by county."""

from __future__ import annotations

import numpy as np
import pandas as pd

from voterpipe.cohorts.arrays import dimension_codes, first_names, label_codes


def household_size_distribution(households: pd.DataFrame, top_size: int) -> pd.DataFrame:
    """Households and voters by household size (voters at one address), sizes >= top_size pooled."""
    sizes = pd.to_numeric(households["voter_count"], errors="coerce").dropna().astype(np.int64).to_numpy()
    clipped = np.minimum(sizes, top_size)
    households_by = np.bincount(clipped, minlength=top_size + 1)[1:]
    voters_by = np.bincount(clipped, weights=sizes, minlength=top_size + 1)[1:]
    labels = [str(s) for s in range(1, top_size)] + [f"{top_size}+"]
    return pd.DataFrame({
        "household_size": labels,
        "size_order": np.arange(1, top_size + 1, dtype=np.int32),
        "households": households_by.astype(np.int64),
        "voters": voters_by.astype(np.int64),
    })


def party_mix_by_cohort(voter_cohorts: pd.DataFrame, dimensions: list[str]) -> pd.DataFrame:
    """Voters by cohort and the party mix of their household (single_party / mixed / unknown /
    no_household), with each row's share of its cohort."""
    mix_codes, mix_labels = label_codes(voter_cohorts["household_party_mix"], "unknown")
    width = len(mix_labels)
    pieces = []
    for dimension in dimensions:
        codes, labels = dimension_codes(voter_cohorts, dimension)
        counts = np.bincount(codes * width + mix_codes, minlength=len(labels) * width).reshape(len(labels), width)
        pieces.append(party_mix_rows(dimension, labels, mix_labels, counts))
    return pd.concat(pieces, ignore_index=True)


def party_mix_rows(dimension: str, labels: np.ndarray, mix_labels: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """The rows of one dimension from its voters per (cohort, party mix) matrix: the non-zero
    cells, each with its share of the cohort."""
    totals = counts.sum(axis=1)
    cohort_index, mix_index = np.nonzero(counts)
    voters = counts[cohort_index, mix_index].astype(np.int64)
    return pd.DataFrame({
        "dimension": dimension, "cohort": labels[cohort_index], "party_mix": mix_labels[mix_index],
        "voters": voters, "share": voters / totals[cohort_index],
    })


def geocode_coverage_by_county(voter_cohorts: pd.DataFrame) -> pd.DataFrame:
    """Per county: voters, voters with a usable address (a household), voters whose household
    address geocoded to a match, and the match rate over all voters."""
    codes, labels = label_codes(voter_cohorts["county_code"], "unknown")
    size = len(labels)
    voters = np.bincount(codes, minlength=size)
    with_address = np.bincount(codes, weights=voter_cohorts["household_id"].notna().to_numpy(), minlength=size)
    geocoded = np.bincount(codes, weights=voter_cohorts["geocoded"].to_numpy(dtype=bool), minlength=size)
    names = np.full(size, None, dtype=object)
    if "county_name" in voter_cohorts:
        named, found = first_names(codes, voter_cohorts["county_name"].to_numpy(dtype=object))
        names[named] = found
    present = np.flatnonzero(voters)
    frame = pd.DataFrame({
        "county_code": labels[present], "county_name": names[present],
        "voters": voters[present].astype(np.int64),
        "voters_with_address": with_address[present].astype(np.int64),
        "voters_geocoded": geocoded[present].astype(np.int64),
    })
    frame["geocode_rate"] = frame["voters_geocoded"] / frame["voters"]
    return frame
