"""Age as of a snapshot date, from a birth date where the state gives one, else the birth year."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

MIN_PLAUSIBLE_AGE = 16  # pre-registration starts at 16 in several states
MAX_PLAUSIBLE_AGE = 115

AGE_METHODS = ("birth_date", "birth_year", "unknown")


def ages_as_of(birth_date: pd.Series, birth_year: pd.Series, as_of: date) -> tuple[pd.Series, pd.Series]:
    """Return (age, method). Age is nullable Int16; method is one of AGE_METHODS.

    A birth year alone gives the age the voter reaches during the snapshot's year (the upper of
    the two possible ages). Placeholder or implausible values give age <NA> and method 'unknown'.
    """
    n = len(birth_date)
    bd = pd.to_datetime(birth_date, errors="coerce")
    by = pd.to_numeric(birth_year, errors="coerce")

    from_date = pd.Series(np.nan, index=birth_date.index)
    has_date = bd.notna().to_numpy()
    if has_date.any():
        years = as_of.year - bd.dt.year
        before_birthday = (bd.dt.month > as_of.month) | ((bd.dt.month == as_of.month) & (bd.dt.day > as_of.day))
        from_date = (years - before_birthday.astype(int)).astype(float)
    from_year = (as_of.year - by).astype(float)

    age = np.where(has_date, from_date.to_numpy(dtype=float), from_year.to_numpy(dtype=float))
    method = np.where(has_date, "birth_date", np.where(by.notna().to_numpy(), "birth_year", "unknown"))
    plausible = (age >= MIN_PLAUSIBLE_AGE) & (age <= MAX_PLAUSIBLE_AGE)
    age = np.where(plausible, age, np.nan)
    method = np.where(plausible, method, "unknown")
    index = birth_date.index if n else None
    return (pd.Series(age, index=index).astype("Int16"), pd.Series(method, index=index, dtype=object))
