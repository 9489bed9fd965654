"""The service inventory: browsing services, and one service's card.

Dependency-aware recovery (docs/DESIGN.md §4.6): a service cannot recover before
the services and suppliers it depends on, so its effective RTO is the longest recovery time along
its dependency chain, computed on the failure graph of itscm/resilience (one implementation).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from itscm.filters import SERVICE_SCOPE_SQL, Filters
from itscm.resilience.analysis import effective_rto
from itscm.store import Store


def service_count(store: Store) -> int:
    """Services in the store, retired ones included: 0 means the inventory was never loaded."""
    return int(store.scalar("SELECT count(*) FROM services"))


def incident_count(store: Store) -> int:
    """Incidents in the store, however they came (uploads, or with the demo store)."""
    return int(store.scalar("SELECT count(*) FROM incidents"))


def service_catalogue(store: Store, filters: Filters, search: str = "", limit: int = 2000) -> pd.DataFrame:
    """Services in the filter whose name, alias, owner or unit contains `search` (any case)."""
    sql = f"""
        SELECT s.service_id, s.name AS service, u.name AS unit, s.tier, s.owner, s.lifecycle,
               s.rto_minutes, s.rpo_minutes, s.mtpd_minutes, s.impact_cost_per_hour, s.recovery_strategy
        FROM services s
        LEFT JOIN business_units u ON u.unit_id = s.unit_id
        WHERE {SERVICE_SCOPE_SQL}
          AND ($search = ''
               OR contains(lower(s.name), $search) OR contains(lower(coalesce(s.owner, '')), $search)
               OR contains(lower(coalesce(u.name, '')), $search)
               OR EXISTS (SELECT 1 FROM service_aliases a
                          WHERE a.service_id = s.service_id AND contains(a.alias_key, $search)))
        ORDER BY s.tier, s.name
        LIMIT $limit
    """
    params = {**filters.scope_params(store), "search": search.strip().lower(), "limit": limit}
    return _with_effective_rto(store, store.df(sql, params))


def _with_effective_rto(store: Store, services: pd.DataFrame) -> pd.DataFrame:
    """`services` (with service_id) with effective_rto_minutes, bottleneck and rto_misaligned
    inserted after its objectives, as the failure graph computes them."""
    effective = effective_rto(store)[["service_id", "effective_rto_minutes", "bottleneck", "rto_misaligned"]]
    merged = services.merge(effective, on="service_id", how="left", validate="one_to_one")
    merged["rto_misaligned"] = merged["rto_misaligned"].fillna(False).astype(bool)
    merged["effective_rto_minutes"] = merged["effective_rto_minutes"].astype("Int64")
    return merged


def service_card(store: Store, service_id: str, incident_limit: int = 100,
                 as_of: dt.date | None = None) -> dict[str, pd.DataFrame]:
    """Everything about one service: objectives, aliases, plans with reviews, drills, the drills'
    findings (overdue: open and due before `as_of`, today unless given), recent incidents, what it
    depends on and what depends on it (with RTOs), and its suppliers."""
    one = {"service_id": service_id}
    return {
        "service": _with_effective_rto(store, store.df("""
            SELECT s.*, u.name AS unit
            FROM services s LEFT JOIN business_units u ON u.unit_id = s.unit_id
            WHERE s.service_id = $service_id""", one)),
        "aliases": store.df("SELECT alias, origin FROM service_aliases WHERE service_id = $service_id "
                            "ORDER BY alias", one),
        "plans": store.df("""
            SELECT p.plan_id, p.title, p.owner, p.status, p.approved_on,
                   max(r.reviewed_on) AS last_review, count(r.reviewed_on) AS reviews, p.document_link
            FROM plans p LEFT JOIN plan_reviews r ON r.plan_id = p.plan_id
            WHERE p.service_id = $service_id GROUP BY ALL ORDER BY p.status, p.plan_id""", one),
        # Open findings counted from the findings themselves where the drill has any; drills that
        # carry only a count (the demo, older stores) show that count.
        "drills": store.df("""
            SELECT d.drill_id, d.held_on, d.drill_type, d.outcome, d.rta_minutes, d.data_loss_minutes,
                   coalesce(f.open, d.open_findings) AS open_findings, d.plan_id
            FROM drills d
            LEFT JOIN (SELECT drill_id, count(*) FILTER (WHERE state = 'open') AS open
                       FROM drill_findings GROUP BY drill_id) f ON f.drill_id = d.drill_id
            WHERE d.service_id = $service_id ORDER BY d.held_on DESC, d.drill_id""", one),
        "findings": store.df("""
            SELECT f.finding_id, f.what, f.owner, f.due_on, f.state,
                   coalesce(f.state = 'open' AND f.due_on < $as_of, FALSE) AS overdue,
                   d.held_on AS drill_held_on, f.drill_id
            FROM drill_findings f JOIN drills d ON d.drill_id = f.drill_id
            WHERE d.service_id = $service_id
            ORDER BY f.state <> 'open', f.due_on NULLS LAST, f.finding_id""",
            {**one, "as_of": as_of or dt.date.today()}),
        "incidents": store.df("""
            SELECT incident_id, title, priority, opened_at, restored_at, resolved_at, closed_at,
                   round(epoch(coalesce(restored_at, resolved_at) - opened_at) / 60.0, 1) AS rta_minutes
            FROM incidents WHERE service_id = $service_id ORDER BY opened_at DESC LIMIT $limit""",
            {**one, "limit": incident_limit}),
        "depends_on": store.df("""
            SELECT d.depends_on_id AS service_id, s.name AS service, s.tier, s.rto_minutes,
                   s.rto_minutes > own.rto_minutes AS longer_rto_than_this, d.has_alternative
            FROM dependencies d JOIN services s ON s.service_id = d.depends_on_id
            JOIN services own ON own.service_id = d.service_id
            WHERE d.service_id = $service_id ORDER BY s.rto_minutes DESC NULLS LAST""", one),
        "dependants": store.df("""
            SELECT d.service_id, s.name AS service, s.tier, s.rto_minutes
            FROM dependencies d JOIN services s ON s.service_id = d.service_id
            WHERE d.depends_on_id = $service_id ORDER BY s.tier, s.name""", one),
        "suppliers": store.df("""
            SELECT sp.supplier_id, sp.name AS supplier, sp.contracted_recovery_minutes, sp.substitutability,
                   sp.contract_end
            FROM service_suppliers ss JOIN suppliers sp ON sp.supplier_id = ss.supplier_id
            WHERE ss.service_id = $service_id ORDER BY sp.name""", one),
        "assets": store.df("""
            SELECT a.asset_id, a.name AS asset, a.asset_class, l.relation, a.location, a.owner, a.lifecycle,
                   a.last_verified, a.verified_by
            FROM service_assets l JOIN assets a ON a.asset_id = l.asset_id
            WHERE l.service_id = $service_id ORDER BY a.lifecycle, a.asset_class, a.name""", one),
    }


def live_services(store: Store) -> dict[str, str]:
    """service_id -> name of the live services, by name: the choices for a dependency."""
    return dict(store.rows("SELECT service_id, name FROM services WHERE lifecycle = 'live' ORDER BY name, service_id"))
