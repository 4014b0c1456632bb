"""The roll as per-voter arrays: age and tenure as of any date (birth data de-duplicated first, so
recomputing for every election stays cheap)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from voterpipe.ages import ages_as_of
from voterpipe.cohorts.arrays import day_number, day_numbers
from voterpipe.cohorts.config import CohortConfig


class Roll:
    """Per-voter arrays reused for every as-of date (birth data is de-duplicated first)."""

    def __init__(self, voters: pd.DataFrame, config: CohortConfig):
        self.n = len(voters)
        birth_date = pd.to_datetime(voters["birth_date"].reset_index(drop=True), errors="coerce")
        birth_year = pd.to_numeric(voters["birth_year"].reset_index(drop=True), errors="coerce")
        bd_days = day_numbers(birth_date)
        # One number per (birth date, birth year) pair; years outside 0..9998 are implausible anyway.
        year_key = np.clip(np.nan_to_num(birth_year.to_numpy(float), nan=-1), -1, 9999)
        key = np.where(np.isnan(bd_days), -10**7, bd_days) * 10_000 + year_key
        _, first, self._inverse = np.unique(key, return_index=True, return_inverse=True)
        self._birth_date = birth_date.iloc[first].reset_index(drop=True)
        self._birth_year = birth_year.iloc[first].reset_index(drop=True)
        reg = day_numbers(voters["registered_on"].reset_index(drop=True))
        reg[reg < day_number(config.tenure_placeholder_before)] = np.nan
        self.registered_days = reg  # NaN: missing or placeholder
        stamps = pd.DatetimeIndex(np.where(np.isnan(reg), 0, reg).astype("int64").astype("datetime64[D]"))
        self._reg_year = stamps.year.to_numpy()
        self._reg_month_day = (stamps.month * 100 + stamps.day).to_numpy()
        year_from_date = birth_date.dt.year.to_numpy(dtype=float, na_value=np.nan)
        self.birth_year_used = np.where(np.isnan(year_from_date), birth_year.to_numpy(float), year_from_date)

    def ages(self, as_of: date) -> tuple[np.ndarray, np.ndarray]:
        """(age as float with NaN for unknown, method) as of `as_of`, via ages_as_of()."""
        age, method = ages_as_of(self._birth_date, self._birth_year, as_of)
        return age.to_numpy(dtype=float, na_value=np.nan)[self._inverse], method.to_numpy()[self._inverse]

    def tenure_years(self, as_of: date) -> np.ndarray:
        """Whole years registered as of `as_of`; NaN when unknown or registered after `as_of`."""
        reg = self.registered_days
        before_anniversary = self._reg_month_day > as_of.month * 100 + as_of.day
        years = (as_of.year - self._reg_year - before_anniversary).astype(float)
        years[np.isnan(reg) | (reg > day_number(as_of))] = np.nan
        return years
