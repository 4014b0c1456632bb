"""Bands: closed intervals of whole numbers (ages, years, tenure) with a label, their checks, and
which band each value falls in."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Band:
    """A closed interval [low, high] of whole numbers; None means open on that side."""

    label: str
    low: int | None
    high: int | None


def check_bands(bands: tuple[Band, ...], what: str, cover_low: int | None, cover_high: int | None) -> None:
    """Raise ValueError unless `bands` are ordered, contiguous, non-overlapping, and cover
    [cover_low, cover_high] (None = unbounded on that side)."""
    if not bands:
        raise ValueError(f"{what}: no bands")
    labels = [b.label for b in bands]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{what}: duplicate band labels {labels}")
    for band in bands:
        if band.low is not None and band.high is not None and band.high < band.low:
            raise ValueError(f"{what}: band {band.label!r} has max < min")
    for before, after in zip(bands, bands[1:]):
        if before.high is None or after.low is None or after.low != before.high + 1:
            raise ValueError(
                f"{what}: bands {before.label!r} and {after.label!r} are not contiguous "
                f"(a value must land in exactly one band)")
    first, last = bands[0], bands[-1]
    if first.low is not None and (cover_low is None or first.low > cover_low):
        raise ValueError(f"{what}: first band {first.label!r} starts at {first.low}, after {cover_low}")
    if last.high is not None and (cover_high is None or last.high < cover_high):
        raise ValueError(f"{what}: last band {last.label!r} ends at {last.high}, before {cover_high}")


def band_codes(values: np.ndarray, bands: tuple[Band, ...]) -> np.ndarray:
    """Index of the band each value falls in; len(bands) (= unknown) for NaN or uncovered values."""
    return band_codes_of_schemes(values, [bands])[0]


def band_codes_of_schemes(values: np.ndarray, schemes: list[tuple[Band, ...]]) -> list[np.ndarray]:
    """band_codes of the same values for each banding scheme (the values are inspected once)."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    finite = values[~missing]
    if len(values) > 10_000 and len(finite) and (finite == np.floor(finite)).all() \
            and finite.max() - finite.min() < 10_000:
        # Whole numbers over a short range (ages, years): band each distinct value once.
        low, high = int(finite.min()), int(finite.max())
        offsets = np.where(missing, high - low + 1, values - low).astype(np.int64)
        distinct = np.arange(low, high + 1, dtype=float)
        return [np.append(_band_codes_by_search(distinct, bands), len(bands))[offsets] for bands in schemes]
    return [_band_codes_by_search(values, bands) for bands in schemes]


def _band_codes_by_search(values: np.ndarray, bands: tuple[Band, ...]) -> np.ndarray:
    lows = np.array([-np.inf if b.low is None else b.low for b in bands], dtype=float)
    highs = np.array([np.inf if b.high is None else b.high for b in bands], dtype=float)
    index = np.searchsorted(lows, values, side="right") - 1
    clipped = np.clip(index, 0, len(bands) - 1)
    inside = ~np.isnan(values) & (index >= 0) & (values <= highs[clipped])
    return np.where(inside, clipped, len(bands)).astype(np.int64)


def band_labels(values: np.ndarray, bands: tuple[Band, ...], unknown: str = "unknown") -> pd.Categorical:
    """The band label of each value (NaN, placeholder or uncovered -> `unknown`)."""
    categories = [b.label for b in bands] + [unknown]
    return pd.Categorical.from_codes(band_codes(values, bands), categories=categories)
