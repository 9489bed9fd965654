"""Durations as continuity people write them -> whole minutes.

RTO, RPO, MTPD, a supplier's contracted recovery time, a drill's RTA and data loss are stored in
minutes, but a BIA spreadsheet says "4h", "4 hours", "1 Week", "Immediately" or "PT4H", and a
column headed "RTO (hours)" holds bare numbers in hours. Every accepted shape is a row of a table
below, so adding one is adding a row; `parse_duration` raises `DurationError` with the reason a
cell is refused, which the import reports with its row and column.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from itscm.administration import LONGEST_OBJECTIVE_MINUTES

LONGEST_MINUTES = LONGEST_OBJECTIVE_MINUTES   # a year, as an admin's edit allows: longer is a typo


class DurationError(ValueError):
    """A cell that is not a duration; the message is the reason, for the problem report."""


# Unit words (lower case, singular and plural, abbreviations) -> seconds per unit (seconds, so that
# every unit is a whole number and "PT3600S" is exactly an hour).
UNITS: dict[str, Decimal] = {}
for _words, _seconds in [
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes", "mn"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 24 * 3600),
    (("w", "wk", "wks", "week", "weeks"), 7 * 24 * 3600),
]:
    for _word in _words:
        UNITS[_word] = Decimal(_seconds)

# Words that are a duration on their own.
WORDS: dict[str, int] = {"immediately": 0, "immediate": 0, "instant": 0, "instantly": 0, "zero": 0}

# Units refused with a reason rather than guessed: their length varies.
VARIABLE_UNITS = {"month": "months", "months": "months", "mo": "months", "year": "years", "years": "years",
                  "yr": "years", "yrs": "years", "y": "years"}

_NUMBER = r"\d+(?:[.,]\d+)?|[.,]\d+"
# "4h", "4 hours", "1.5 Days", "1h 30m", "1 hour and 30 minutes": one or more number-unit parts.
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]+)\.?\s*(?:,|and|&)?", re.IGNORECASE)
_PARTS = re.compile(rf"^(?:\s*(?:{_NUMBER})\s*[a-z]+\.?\s*(?:,|and|&)?)+\s*$", re.IGNORECASE)
# ISO 8601: PnW, or PnDTnHnMnS with any part left out (P1D, PT4H, PT30M, P1DT12H).
_ISO = re.compile(
    rf"^P(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?$",
    re.IGNORECASE,
)
_ISO_VARIABLE = re.compile(r"^P(?:\d+Y|\d+M)", re.IGNORECASE)
_ISO_UNITS = {"weeks": UNITS["week"], "days": UNITS["day"], "hours": UNITS["hour"], "minutes": UNITS["minute"],
              "seconds": UNITS["second"]}
# 04:00 or 4:00:00 (hours:minutes[:seconds]), as a clock-style cell holds a duration.
_CLOCK = re.compile(r"^(\d{1,4}):([0-5]\d)(?::([0-5]\d))?$")

# An upper bound, as a BIA or a ServiceNow timeframe choice writes it: "up to 4 hours", "< 4h",
# "within 1 day". The bound is the objective.
_BOUND = re.compile(r"^(?:up\s+to|within|less\s+than|under|no\s+more\s+than|max(?:imum)?\.?|<=?|≤)\s*(?P<rest>\S.*)$",
                    re.IGNORECASE)
# A range, as ServiceNow's timeframe labels and BIA scales write it: "1-2 Days", "4 to 8 hours",
# "1 day - 1 week". Its upper bound is the objective: the range says recovery is acceptable up to
# its end, and the preview shows the minutes read (docs/DESIGN.md, "Inventory import").
_RANGE = re.compile(rf"^(?P<low>(?:{_NUMBER})(?:\s*[a-z]+)?)\s*(?:-|–|—|\bto\b)\s*(?P<high>(?:{_NUMBER})\s*[a-z].*)$",
                    re.IGNORECASE)

# A header's unit: "RTO (hours)", "RTO [h]", "RTO in days", "RTO hours", "RTO - minutes".
_HEADER_UNIT = re.compile(r"^(?P<name>.*?)\s*(?:\((?P<p>[^)]*)\)|\[(?P<b>[^\]]*)\]|(?:-|in)?\s+(?P<w>[a-z]+))\s*$",
                          re.IGNORECASE)


def header_unit(header: str) -> tuple[str, str | None]:
    """(the header without its unit, the unit word) for "RTO (hours)" -> ("RTO", "hours"); a
    header without a recognised unit comes back whole, with None."""
    match = _HEADER_UNIT.match(header.strip())
    if match:
        unit = (match["p"] or match["b"] or match["w"] or "").strip().lower()
        if unit in UNITS or unit in VARIABLE_UNITS:
            return match["name"].strip(), unit
    return header.strip(), None


_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _number(text: str) -> Decimal:
    # "1,440" is a day in minutes with a thousands separator; "1,5" is one and a half.
    text = text.replace(",", "") if _THOUSANDS.fullmatch(text) else text.replace(",", ".")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise DurationError(f"{text!r} is not a number") from None


def _minutes(seconds: Decimal, shown: str) -> int:
    total = seconds / 60
    if total < 0:
        raise DurationError("a duration cannot be negative")
    if total != total.to_integral_value():
        minutes = f"{total.normalize():f}"
        raise DurationError(f"{shown} is not a whole number of minutes"
                            + ("" if minutes == shown else f" ({minutes} minutes)"))
    if total > LONGEST_MINUTES:
        raise DurationError(f"{shown} is longer than a year ({LONGEST_MINUTES:,} minutes)")
    return int(total)


def _unit(word: str) -> Decimal:
    word = word.lower()
    if word in VARIABLE_UNITS:
        raise DurationError(f"{VARIABLE_UNITS[word]} vary in length; give the duration in days or weeks")
    if word not in UNITS:
        raise DurationError(f"unknown unit {word!r} (use minutes, hours, days or weeks)")
    return UNITS[word]


def parse_duration(value: object, unit: str | None = None) -> int | None:
    """Whole minutes for a cell's value: a number (in `unit`, the header's, else minutes) or text
    such as "4h", "4 hours", "30 minutes", "1 Week", "Immediately", "PT4H", "04:00". None for a
    blank cell. Raises DurationError with the reason otherwise."""
    per_unit = _unit(unit) if unit else UNITS["minute"]
    if value is None:
        return None
    if isinstance(value, bool):
        raise DurationError("a yes/no value is not a duration")
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        return _minutes(number * per_unit, f"{value} {unit}" if unit else str(value))
    text = str(value).strip()
    if not text:
        return None
    lowered = text.lower().rstrip(".")
    if lowered in WORDS:
        return WORDS[lowered]
    if re.fullmatch(_NUMBER, text) or re.fullmatch(r"[+-]\s*(?:" + _NUMBER + ")", text):
        return _minutes(_number(text.replace(" ", "")) * per_unit, f"{text} {unit}" if unit else text)
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        return _minutes(Decimal((hours * 60 + minutes) * 60 + seconds), text)
    if text[:1] in "Pp":
        if _ISO_VARIABLE.match(text):
            raise DurationError("years and months vary in length; give the duration in days or weeks")
        iso = _ISO.match(text)
        if iso and any(iso.groupdict().values()) and not text.upper().endswith("T"):
            total = sum((_number(amount) * _ISO_UNITS[name] for name, amount in iso.groupdict().items() if amount),
                        Decimal(0))
            return _minutes(total, text)
        raise DurationError(f"{text!r} is not an ISO 8601 duration such as PT4H or P1D")
    bound = _BOUND.match(text)
    if bound:
        return parse_duration(bound["rest"], unit)
    span = _RANGE.match(text)
    if span:
        high = parse_duration(span["high"], unit)
        low_text = span["low"].strip()
        # "1-2 Days": the low end's unit is the high end's.
        low = parse_duration(low_text + " " + _PART.findall(span["high"])[-1][1] if re.fullmatch(_NUMBER, low_text)
                             else low_text, unit)
        if low is not None and high is not None and low > high:
            raise DurationError(f"{text!r} is a range from more to less")
        return high
    if _PARTS.match(text):
        total = sum((_number(amount) * _unit(word) for amount, word in _PART.findall(text)), Decimal(0))
        return _minutes(total, text)
    if text.startswith("-"):
        raise DurationError("a duration cannot be negative")
    raise DurationError(f"{text!r} is not a duration (write minutes, or e.g. 4h, 2 days, 1 week, PT4H)")
