"""Inventory currency (docs/DESIGN.md, "Assets and inventory currency"): the share of the assets
behind live critical services that were verified (audit, discovery or review) within the policy's
interval for the service's tier.

In scope at an as-of date: live assets linked (service_assets) to a live service of a critical
tier of the policy that the filter keeps. An asset behind several critical services must meet the
strictest of their intervals (all of its live critical services', whichever the filter shows: what
an asset owes does not depend on who is looking). It is verified when its last verification is on
or before the as-of date and no more than that interval before it.

The store keeps an asset's latest verification only, and its links and lifecycle as they are now:
at a past date, an asset verified since then counts as unverified then (it may have been verified
before too; the store cannot say), so a figure for a past date is a lower bound. Where more than
UNKNOWN_SHARE of the assets were verified after the date, the figure would say how recently they
were verified rather than how current they were then: it is not given (None), so the trend starts
where the store can speak and the tile compares with no previous figure it cannot know.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.measures.common import month_ends, percent
from itscm.store import Store, reads_one_snapshot

# When the policy has no interval for a critical tier (an admin cleared it): the default.
DEFAULT_INTERVAL_DAYS = 90
# Above this share of assets verified after a date, the figure for that date is not given.
UNKNOWN_SHARE = 0.1

# Columns: as_of, asset_id, asset, asset_class, owner, location, last_verified, verified_by,
# interval_days (the strictest of its critical services'), days_since (NULL: never verified or
# verified after the as-of date), verified, verified_later (its state at the as-of date is
# unknown: its last verification is after it), services (the in-scope critical services it is
# behind, by name), units (their business units).
ASSET_CURRENCY_SQL = f"""
WITH as_of_dates AS (
    SELECT unnest($as_of_dates)::DATE AS as_of
),
critical_links AS (
    SELECT l.asset_id, s.service_id, s.name AS service, u.name AS unit,
           coalesce(p.asset_verify_interval_days, {DEFAULT_INTERVAL_DAYS}) AS interval_days,
           {SERVICE_SCOPE_SQL} AS in_scope
    FROM service_assets l
    JOIN services s ON s.service_id = l.service_id AND s.lifecycle = 'live'
    JOIN policy p ON p.tier = s.tier AND p.is_critical
    LEFT JOIN business_units u ON u.unit_id = s.unit_id
),
behind AS (
    SELECT asset_id, min(interval_days) AS interval_days,
           list(DISTINCT service ORDER BY service) FILTER (WHERE in_scope) AS services,
           list(DISTINCT unit ORDER BY unit) FILTER (WHERE in_scope AND unit IS NOT NULL) AS units
    FROM critical_links GROUP BY asset_id HAVING bool_or(in_scope)
)
SELECT d.as_of, a.asset_id, a.name AS asset, a.asset_class, a.owner, a.location, a.last_verified, a.verified_by,
       b.interval_days,
       CASE WHEN a.last_verified <= d.as_of THEN date_diff('day', a.last_verified, d.as_of) END AS days_since,
       coalesce(a.last_verified <= d.as_of AND date_diff('day', a.last_verified, d.as_of) <= b.interval_days,
                FALSE) AS verified,
       coalesce(a.last_verified > d.as_of, FALSE) AS verified_later, b.services, b.units
FROM as_of_dates d CROSS JOIN behind b JOIN assets a ON a.asset_id = b.asset_id AND a.lifecycle = 'live'
"""


def _params(store: Store, filters: Filters, as_of_dates: list[dt.date]) -> dict:
    return filters.snapshot_params(store, as_of_dates)


@reads_one_snapshot
def inventory_currency_summary(store: Store, filters: Filters) -> dict:
    """{assets, verified, pct, verified_later} at the as-of date; pct is None when no asset is
    behind a critical service in scope (no assets yet, or none linked), or when the store cannot
    say (more than UNKNOWN_SHARE of them verified after the date: see the module's note)."""
    return inventory_currency_summaries(store, filters, [filters.as_of])[filters.as_of]


def _share(verified: int, assets: int, later: int) -> float | None:
    return None if later > UNKNOWN_SHARE * assets else percent(verified, assets)


@reads_one_snapshot
def inventory_currency_summaries(store: Store, filters: Filters, as_of_dates: list[dt.date]
                                 ) -> dict[dt.date, dict]:
    """inventory_currency_summary at each date, in one query."""
    sql = (f"SELECT as_of, count(*), count(*) FILTER (WHERE verified), count(*) FILTER (WHERE verified_later) "
           f"FROM ({ASSET_CURRENCY_SQL}) GROUP BY as_of")
    counts = {as_of: (assets, verified, later)
              for as_of, assets, verified, later in store.rows(sql, _params(store, filters, as_of_dates))}
    summaries = {}
    for as_of in as_of_dates:
        assets, verified, later = counts.get(as_of, (0, 0, 0))
        summaries[as_of] = {"assets": assets, "verified": verified, "pct": _share(verified, assets, later),
                            "verified_later": later}
    return summaries


@reads_one_snapshot
def inventory_currency_trend(store: Store, filters: Filters) -> pd.DataFrame:
    """month (first day), inventory_currency_pct: the share at each month's end (the as-of date
    for the running month), as the store knows it now; empty where it cannot say (see the
    module's note)."""
    dates = month_ends(filters.since, min(filters.until, filters.as_of))
    return store.df(f"""
        SELECT date_trunc('month', as_of) AS month,
               CASE WHEN count(*) FILTER (WHERE verified_later) <= $unknown_share * count(*)
                    THEN round(100.0 * count(*) FILTER (WHERE verified) / count(*), 1) END AS inventory_currency_pct
        FROM ({ASSET_CURRENCY_SQL}) GROUP BY as_of ORDER BY as_of
    """, {**_params(store, filters, dates), "unknown_share": UNKNOWN_SHARE})


@reads_one_snapshot
def inventory_currency_by_unit(store: Store, filters: Filters) -> pd.DataFrame:
    """unit, inventory_currency_pct, unverified_assets: an asset behind services of several units
    counts in each."""
    return store.df(f"""
        SELECT unit, round(100.0 * count(*) FILTER (WHERE verified) / count(*), 1) AS inventory_currency_pct,
               count(*) FILTER (WHERE NOT verified) AS unverified_assets
        FROM (SELECT *, unnest(units) AS unit FROM ({ASSET_CURRENCY_SQL})) GROUP BY unit
    """, _params(store, filters, [filters.as_of]))


@reads_one_snapshot
def asset_currency(store: Store, filters: Filters) -> pd.DataFrame:
    """Every asset behind a critical service in scope at the as-of date, the unverified first
    (never verified, then the longest since): asset_id, asset, asset_class, owner, location,
    last_verified, verified_by, interval_days, days_since, verified, services, units (as text)."""
    frame = store.df(f"""
        SELECT asset_id, asset, asset_class, owner, location, last_verified, verified_by, interval_days, days_since,
               verified, array_to_string(services, ', ') AS services, array_to_string(units, ', ') AS units
        FROM ({ASSET_CURRENCY_SQL})
        ORDER BY verified, days_since DESC NULLS FIRST, asset_id
    """, _params(store, filters, [filters.as_of]))
    return frame


@reads_one_snapshot
def unverified_by_owner_and_unit(store: Store, filters: Filters) -> pd.DataFrame:
    """owner, unit, assets, unverified: the assets behind critical services in scope by their
    owner and the business unit of the services they are behind, the most unverified first."""
    return store.df(f"""
        SELECT coalesce(owner, '(no owner)') AS owner, coalesce(unit, '(no unit)') AS unit, count(*) AS assets,
               count(*) FILTER (WHERE NOT verified) AS unverified
        FROM (SELECT *, unnest(CASE WHEN len(units) = 0 THEN [NULL] ELSE units END) AS unit
              FROM ({ASSET_CURRENCY_SQL}))
        GROUP BY ALL ORDER BY unverified DESC, assets DESC, owner, unit
    """, _params(store, filters, [filters.as_of]))


@reads_one_snapshot
def service_assets(store: Store, service_id: str) -> pd.DataFrame:
    """The assets a service runs on: asset_id, asset, asset_class, relation, location, owner,
    lifecycle, last_verified, verified_by."""
    return store.df("""
        SELECT a.asset_id, a.name AS asset, a.asset_class, l.relation, a.location, a.owner, a.lifecycle,
               a.last_verified, a.verified_by
        FROM service_assets l JOIN assets a ON a.asset_id = l.asset_id
        WHERE l.service_id = $service_id ORDER BY a.lifecycle, a.asset_class, a.name
    """, {"service_id": service_id})


@reads_one_snapshot
def asset_count(store: Store) -> int:
    """Assets in the store, retired ones included: 0 means none were ever imported."""
    return int(store.scalar("SELECT count(*) FROM assets"))
