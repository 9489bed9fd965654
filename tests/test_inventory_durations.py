"""Durations as BIA spreadsheets write them -> whole minutes, and the reasons others are refused."""

from __future__ import annotations

import pytest

from itscm.workbook.durations import DurationError, header_unit, parse_duration

pytestmark = pytest.mark.no_store   # opens no store: not run again on DuckLake

ACCEPTED = [
    # (cell, the header's unit, minutes)
    (240, None, 240),
    (240.0, None, 240),
    ("240", None, 240),
    (" 240 ", None, 240),
    ("1,440", None, 1440),                 # a thousands separator
    ("4h", None, 240),
    ("4 h", None, 240),
    ("4H", None, 240),
    ("4 hours", None, 240),
    ("4 Hours", None, 240),
    ("1 hour", None, 60),
    ("1.5 hours", None, 90),
    ("1,5 hours", None, 90),               # a decimal comma
    ("0.5h", None, 30),
    ("30 minutes", None, 30),
    ("30 min", None, 30),
    ("30m", None, 30),
    ("90 mins", None, 90),
    ("1 day", None, 1440),
    ("2 days", None, 2880),
    ("1 Week", None, 10080),
    ("2 weeks", None, 20160),
    ("2 wks", None, 20160),
    ("1h 30m", None, 90),
    ("1h30m", None, 90),
    ("1 hour and 30 minutes", None, 90),
    ("1 day, 12 hours", None, 2160),
    ("Immediately", None, 0),
    ("immediate", None, 0),
    ("0", None, 0),
    ("PT4H", None, 240),
    ("pt30m", None, 30),
    ("PT1H30M", None, 90),
    ("P1D", None, 1440),
    ("P1DT12H", None, 2160),
    ("P2W", None, 20160),
    ("PT3600S", None, 60),
    ("04:00", None, 240),
    ("1:30", None, 90),
    ("36:00", None, 2160),
    (4, "hours", 240),
    ("4", "hours", 240),
    (1.5, "hours", 90),
    (2, "days", 2880),
    (1, "week", 10080),
    ("30 minutes", "hours", 30),           # a unit in the cell wins over the header's
    # ServiceNow's timeframe choice labels, and ranges and bounds: the upper bound is the objective.
    ("1 Hour", None, 60),
    ("4 Hours", None, 240),
    ("1 Day", None, 1440),
    ("1-2 Days", None, 2880),
    ("1 - 2 days", None, 2880),
    ("0-15 Minutes", None, 15),
    ("4 to 8 hours", None, 480),
    ("1 day - 1 week", None, 10080),
    ("12h–24h", None, 1440),
    ("up to 4 hours", None, 240),
    ("Within 1 day", None, 1440),
    ("< 4h", None, 240),
    ("<= 30 minutes", None, 30),
    ("less than 2 hours", None, 120),
    ("max. 1 week", None, 10080),
    ("PT4H", "hours", 240),                # ISO 8601 carries its own unit
    ("14400 seconds", None, 240),          # ciso-assistant stores objectives in seconds
    ("Immediately.", None, 0),
    ("", None, None),
    ("   ", None, None),
    (None, None, None),
]

REFUSED = [
    ("-5", None, "negative"),
    ("-1 hour", None, "negative"),
    ("4.5", None, "not a whole number of minutes"),
    (4.5, None, "not a whole number of minutes"),
    ("0.01h", None, "not a whole number of minutes"),
    ("1 month", None, "months vary in length"),
    ("2 years", None, "years vary in length"),
    ("P1M", None, "years and months vary"),
    ("P1Y", None, "years and months vary"),
    ("PT", None, "not an ISO 8601 duration"),
    ("P", None, "not an ISO 8601 duration"),
    ("PTX", None, "not an ISO 8601 duration"),
    ("2 fortnights", None, "unknown unit 'fortnights'"),
    ("soon", None, "not a duration"),
    ("four hours", None, "not a duration"),
    ("400 days", None, "longer than a year"),
    (10**7, None, "longer than a year"),
    (True, None, "yes/no value"),
    (4, "months", "months vary in length"),
    ("2-1 days", None, "from more to less"),
    ("1-2 months", None, "months vary in length"),
    ("up to soon", None, "not a duration"),
]


@pytest.mark.parametrize(("cell", "unit", "minutes"), ACCEPTED)
def test_accepted_durations(cell, unit, minutes):
    assert parse_duration(cell, unit) == minutes


@pytest.mark.parametrize(("cell", "unit", "reason"), REFUSED)
def test_refused_durations_say_why(cell, unit, reason):
    with pytest.raises(DurationError, match=reason):
        parse_duration(cell, unit)


@pytest.mark.parametrize(("header", "expected"), [
    ("RTO (hours)", ("RTO", "hours")),
    ("RTO (Hours)", ("RTO", "hours")),
    ("RTO [h]", ("RTO", "h")),
    ("RTO in days", ("RTO", "days")),
    ("MTPD - minutes", ("MTPD", "minutes")),
    ("RPO hrs", ("RPO", "hrs")),
    ("contracted recovery time (minutes)", ("contracted recovery time", "minutes")),
    ("RTO", ("RTO", None)),
    ("RTO (target)", ("RTO (target)", None)),         # not a unit: the header stays whole
])
def test_a_header_names_its_unit(header, expected):
    assert header_unit(header) == expected
