"""The checks every form and write of the store shares: each turns a value as given into the
value to store, or refuses it with one line for the user (`ChangeRefused`). Used by the admin
changes (itscm/administration.py) and the continuity records (itscm/records.py), so a field is
checked the same way wherever it is written."""

from __future__ import annotations

import datetime as dt

import pandas as pd

LONGEST_OBJECTIVE_MINUTES = 366 * 24 * 60   # a year: anything longer is a typo, not an objective


class ChangeRefused(ValueError):
    """A change that would put a wrong value in the store; one line for the user."""


def whole_minutes(label: str, value) -> int | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, bool) or not float(value).is_integer():
        raise ChangeRefused(f"{label} is a whole number of minutes, not {value!r}.")
    minutes = int(value)
    if not 0 <= minutes <= LONGEST_OBJECTIVE_MINUTES:
        raise ChangeRefused(f"{label} must be between 0 and {LONGEST_OBJECTIVE_MINUTES:,} minutes (a year).")
    return minutes


def text(label: str, value, *, required: bool = False, longest: int = 200) -> str | None:
    checked = None if value is None else str(value).strip() or None
    if required and checked is None:
        raise ChangeRefused(f"{label} cannot be empty.")
    if checked is not None and len(checked) > longest:
        raise ChangeRefused(f"{label} is longer than {longest} characters.")
    return checked


def one_of(label: str, value, allowed: tuple) -> object:
    if value not in allowed:
        raise ChangeRefused(f"{label} must be one of {', '.join(map(str, allowed))}, not {value!r}.")
    return value


def cost(value) -> float | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    checked = float(value)
    if not 0 <= checked < 1e12:
        raise ChangeRefused("Cost per hour must be zero or more.")
    return checked


def day(label: str, value, *, required: bool = False, not_after: dt.date | None = None) -> dt.date | None:
    """A calendar day (a date, a datetime's day, or ISO text); `not_after`: the latest allowed
    (today, for something that has happened)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ChangeRefused(f"{label} cannot be empty.")
        return None
    if isinstance(value, dt.datetime):
        checked = value.date()
    elif isinstance(value, dt.date):
        checked = value
    else:
        try:
            checked = dt.date.fromisoformat(str(value).strip())
        except ValueError as error:
            raise ChangeRefused(f"{label} is a date (YYYY-MM-DD), not {value!r}.") from error
    if not_after is not None and checked > not_after:
        raise ChangeRefused(f"{label} cannot be in the future ({checked.isoformat()} is after "
                            f"{not_after.isoformat()}).")
    return checked
