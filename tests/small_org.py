"""A small, fixed organisation for page tests: every state of every measure appears at least once."""

from __future__ import annotations

import datetime as dt
import itertools

from itscm.store import Store
from tests.builders import OrgBuilder, at

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def build_small_org(path, as_of: dt.date) -> None:
    # Its own ids (svc1, plan1, ...), whichever tests built stores before it in the session.
    org = OrgBuilder(Store(path), ids=itertools.count(1))
    payments = org.unit("Payments", unit_id="bu-pay")
    cards = org.unit("Cards", parent=payments, unit_id="bu-cards")
    retail = org.unit("Retail <b>Banking</b>", unit_id="bu-retail")   # markup in a name is text
    org.unit("Legal", unit_id="bu-legal")                              # no critical service

    ledger = org.covered_service(payments, as_of, name="Core Ledger", tier=1, rto_minutes=60,
                                 impact_cost_per_hour=50_000.0)
    org.alias(ledger, "CBL-PROD-01")
    org.drill(ledger, as_of - 3 * DAY, rta_minutes=45)
    auth = org.covered_service(cards, as_of, name="Card Authorisation", tier=1, rto_minutes=30,
                               impact_cost_per_hour=80_000.0)
    org.drill(auth, as_of - 5 * DAY, rta_minutes=25)
    portal = org.service(retail, name="Customer Portal", tier=2, rto_minutes=240, impact_cost_per_hour=5_000.0)
    stale_plan = org.plan(portal)
    org.review(stale_plan, as_of - 400 * DAY)
    org.drill(portal, as_of - 300 * DAY, plan_id=stale_plan, drill_type="tabletop", rta_minutes=None)
    branch = org.service(retail, name="Branch Teller", tier=2, rto_minutes=480, impact_cost_per_hour=None)
    org.plan(branch, status="draft", approved_on=None)
    org.service(retail, name="Mortgage Origination", tier=1, rto_minutes=120, recovery_strategy="none")
    org.service(payments, name="Expense Claims", tier=4, rto_minutes=4320, impact_cost_per_hour=100.0)
    with org.store.transaction() as cursor:
        # ledger RTO 60 > auth 30
        cursor.execute("INSERT INTO dependencies (service_id, depends_on_id) VALUES (?, ?)", [auth, ledger])

    for month_back in range(14):
        opened = at(as_of - (15 + 30 * month_back) * DAY, 9)
        org.incident(ledger, opened, restored_at=opened + (0.5 + (month_back % 4) * 0.4) * HOUR,
                     service_name="cbl-prod-01", title="Ledger <script>alert(1)</script> batch stuck")
        org.incident(auth, opened, restored_at=opened + 0.3 * HOUR, service_name="Card Authorisation")
        org.incident(portal, opened + 2 * HOUR, resolved_at=opened + 9 * HOUR, service_name="Customer Portal")
        org.incident(None, opened, restored_at=opened + 2 * HOUR, service_name="OLD-MAINFRAME")
    org.incident(branch, at(as_of, 8), service_name="Branch Teller")   # ongoing
    org.store.close()
