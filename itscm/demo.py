"""A deterministic demo organisation: a bank-like group with the gaps real ones have.

The same seed, sizes and as-of date give the same store. History (plans, reviews, drills,
incidents) covers about three years and ends at the as-of date, so the demo always looks
current. Incidents are generated in fixed-size chunks of numbers (numpy) and turned into rows by
DuckDB, so 10M incidents need bounded memory and no per-row Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from itscm import change_days, rollup
from itscm.incident_columns import FACT_COLUMNS
from itscm.store import Store

HISTORY_DAYS = 3 * 365
INCIDENT_CHUNK = 500_000

# name, parent, head
UNITS = [
    ("Retail Banking", None, "Amelia Hart"),
    ("Cards & Payments", "Retail Banking", "Rahul Mehta"),
    ("Digital Channels", "Retail Banking", "Sofia Lindqvist"),
    ("Corporate Banking", None, "Marcus Webb"),
    ("Group Finance", None, "Helen Okafor"),
    ("Group HR", None, "Daniel Brooks"),
    ("Infrastructure & Cloud", None, "Priya Nair"),
    ("Information Security", None, "Tomasz Kowalski"),
    ("Data & Analytics", None, "Grace Liu"),
    ("Customer Service", None, "Oliver Grant"),
    ("Legal & Compliance", None, "Isabel Moreno"),
    ("Corporate IT", None, "Samuel Adeyemi"),
]

# Shared platforms everything leans on: generated first, so every dependency edge points to an
# earlier service and the graph stays acyclic. Their RTOs are deliberately not all short.
PLATFORMS = [
    ("Active Directory", "Infrastructure & Cloud", 1, 240),
    ("Core Network", "Infrastructure & Cloud", 1, 60),
    ("Primary Data Centre", "Infrastructure & Cloud", 1, 120),
    ("Identity & Access Management", "Information Security", 1, 480),
    ("Enterprise Service Bus", "Infrastructure & Cloud", 2, 240),
    ("Email & Collaboration", "Corporate IT", 2, 480),
    ("Database Platform", "Infrastructure & Cloud", 1, 120),
    ("Backup & Recovery Platform", "Infrastructure & Cloud", 2, 1440),
]

SERVICES_BY_UNIT = {
    "Retail Banking": ["Core Banking Ledger", "Branch Teller", "Mortgage Origination", "Savings Accounts",
                       "Loan Servicing", "Customer Onboarding", "Credit Decisioning", "Statement Generation"],
    "Cards & Payments": ["Card Authorisation", "Payments Hub", "Faster Payments Gateway", "SWIFT Messaging",
                         "Card Management", "Chargeback Handling", "ATM Network", "Direct Debits"],
    "Digital Channels": ["Mobile Banking App", "Customer Portal", "Online Banking", "Open Banking API",
                         "Push Notifications", "Chatbot", "Digital Identity Verification"],
    "Corporate Banking": ["Trade Finance", "Cash Management", "Treasury Dealing", "Corporate Lending",
                          "Liquidity Reporting", "FX Trading"],
    "Group Finance": ["General Ledger", "Accounts Payable", "Regulatory Reporting", "Financial Consolidation",
                      "Expense Claims", "Budget Planning", "Tax Reporting"],
    "Group HR": ["Payroll", "HR Information System", "Recruitment Portal", "Learning Management",
                 "Time & Attendance", "Pensions Administration"],
    "Infrastructure & Cloud": ["Cloud Landing Zone", "DNS & DHCP", "Virtual Desktop", "Storage Platform",
                               "Kubernetes Platform", "Monitoring & Alerting", "File Transfer Service"],
    "Information Security": ["Security Operations Centre", "Privileged Access Management", "Firewall Management",
                             "Fraud Detection", "Certificate Authority", "Data Loss Prevention"],
    "Data & Analytics": ["Data Warehouse", "Customer Analytics", "Risk Data Mart", "Reporting Portal",
                         "Master Data Management", "Data Lake"],
    "Customer Service": ["Contact Centre Telephony", "CRM", "Complaints Management", "Workforce Management",
                         "Customer Correspondence"],
    "Legal & Compliance": ["AML Screening", "Sanctions Screening", "Contract Management", "Policy Library",
                           "KYC Case Management"],
    "Corporate IT": ["Service Desk", "Intranet", "Print Services", "Asset Management", "Software Distribution"],
}
VARIANTS = ["", " API", " Batch", " Reporting", " Archive", " EMEA", " APAC", " Americas", " Test Harness",
            " Data Feed", " Admin Console", " Integration"]

PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov", "Donald Knuth",
          "Margaret Hamilton", "Ken Thompson", "Frances Allen", "John Backus", "Radia Perlman", "Tim Berners-Lee",
          "Hedy Lamarr", "Leslie Lamport", "Katherine Johnson", "Dennis Ritchie", "Shafi Goldwasser",
          "Vint Cerf", "Adele Goldberg", "Niklaus Wirth", "Anita Borg", "Bjarne Stroustrup", "Jean Bartik",
          "Guido van Rossum", "Sophie Wilson", "Linus Torvalds", "Karen Sparck Jones", "Tony Hoare"]

SUPPLIERS = [("AWS", 60), ("Microsoft Azure", 60), ("Google Cloud", 120), ("BT Business", 240),
             ("Vodafone", 240), ("Equinix", 120), ("Salesforce", 240), ("ServiceNow", 480),
             ("Workday", 480), ("Oracle", 240), ("SAP", 480), ("IBM", 240), ("Accenture", 1440),
             ("Capgemini", 1440), ("TCS", 1440), ("Infosys", 1440), ("Fiserv", 120), ("FIS", 120),
             ("Temenos", 240), ("Finastra", 240), ("Mastercard", 30), ("Visa", 30), ("SWIFT", 60),
             ("Cloudflare", 30), ("Okta", 60)]

TITLES = ["Database connection pool exhausted", "Login failures after certificate expiry",
          "Batch job overran its window", "Network latency between data centres", "Disk full on application server",
          "Failed deployment rolled back", "Third-party API timeouts", "Memory leak after release",
          "Storage array controller failover", "DNS resolution failures", "Message queue backlog",
          "Authentication service unavailable", "Slow response times reported by users", "Power outage in comms room",
          "Firewall rule change blocked traffic", "Replication lag on primary database",
          "Load balancer health checks failing", "Expired password on service account",
          "Ransomware alert on file share", "Cloud region degradation"]

DRILL_TYPES = ["walkthrough", "tabletop", "simulation", "parallel", "full interruption"]
STRATEGY_BY_TIER = {1: (["active-active", "hot"], [0.45, 0.55]), 2: (["hot", "warm"], [0.3, 0.7]),
                    3: (["warm", "cold"], [0.4, 0.6]), 4: (["cold", "manual"], [0.6, 0.4])}
RTO_CHOICES = {1: [15, 30, 60, 120, 240], 2: [240, 360, 480], 3: [1440], 4: [4320, 10080]}
COST_PER_HOUR = {1: (15_000, 150_000), 2: (2_000, 25_000), 3: (500, 5_000), 4: (100, 800)}
TEST_EVERY_DAYS = {1: 130, 2: 200, 3: 450, 4: 800}
REVIEW_EVERY_DAYS = {1: 140, 2: 280, 3: 280, 4: 560}
SOURCES = ["servicenow", "pagerduty", "jira", "opsgenie"]


def build_demo(store: Store, *, seed: int = 7, services: int = 300, incidents: int = 60_000,
               as_of: dt.date | None = None, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Fill an empty store with the demo organisation; returns the row count of each table."""
    if store.scalar("SELECT count(*) FROM services"):
        raise ValueError("the store already holds services; the demo is built into an empty store only")
    if services < len(PLATFORMS) + 1:
        raise ValueError(f"the demo needs at least {len(PLATFORMS) + 1} services")
    as_of = as_of or dt.date.today()
    say = progress or (lambda _step: None)
    rng = np.random.default_rng(seed)

    units = _units()
    service_frame = _services(rng, units, services)
    aliases = _aliases(service_frame)
    dependencies = _dependencies(rng, service_frame)
    suppliers, service_suppliers = _suppliers(rng, service_frame)
    # Drawn from a stream of their own, so the rest of the demo (incidents, measures) is as before.
    dependencies, suppliers = _resilience_facts(np.random.default_rng([seed, RESILIENCE_STREAM]), dependencies,
                                                suppliers, as_of)
    plans, reviews, drills = _plans_reviews_drills(rng, service_frame, as_of)
    # Assets draw from a stream of their own, so adding them moved no other demo figure.
    assets, service_assets = _assets(np.random.default_rng([seed, ASSET_STREAM]), service_frame, suppliers, as_of)
    say(f"organisation: {len(units)} units, {len(service_frame)} services, {len(plans)} plans, {len(drills)} drills, "
        f"{len(assets)} assets")

    with store.transaction() as cursor:
        for table, frame in [("business_units", units), ("services", service_frame.drop(columns=["base"])),
                             ("service_aliases", aliases), ("dependencies", dependencies),
                             ("suppliers", suppliers), ("service_suppliers", service_suppliers),
                             ("plans", plans), ("plan_reviews", reviews), ("drills", drills),
                             ("assets", assets), ("service_assets", service_assets)]:
            cursor.register("demo_rows", frame)
            cursor.execute(f"INSERT INTO {table} BY NAME SELECT * FROM demo_rows")
            cursor.unregister("demo_rows")
        for statement in DRILL_FINDINGS_SQL:
            cursor.execute(statement, {"as_of": as_of} if "$as_of" in statement else {})
        _insert_incident_names(cursor, service_frame, aliases)
        for start in range(0, incidents, INCIDENT_CHUNK):
            count = min(INCIDENT_CHUNK, incidents - start)
            chunk = _incident_numbers(np.random.default_rng([seed, start]), service_frame, start, count, as_of,
                                      incidents)
            cursor.register("incident_numbers", chunk)
            cursor.execute(INCIDENTS_FROM_NUMBERS_SQL, {"titles": TITLES})
            cursor.unregister("incident_numbers")
            say(f"incidents: {start + count:,} of {incidents:,}")
        cursor.execute("DROP TABLE demo_incident_names")
        # Its own random stream, so adding the change history moved none of the figures above.
        changes = _change_history(np.random.default_rng([seed, CHANGE_STREAM]), service_frame, as_of,
                                  _servers_by_service(assets, service_assets))
        cursor.register("demo_rows", changes)
        cursor.execute("INSERT INTO changes BY NAME SELECT * FROM demo_rows")
        cursor.unregister("demo_rows")
        say(f"changes: {len(changes):,}")
        say("derived columns, the monthly rollup and the change days")
        rollup.rebuild(cursor)   # every incident is new: built whole, not searched for changes
        change_days.rebuild(cursor)
    return {table: store.scalar(f"SELECT count(*) FROM {table}") for table in
            ["business_units", "services", "service_aliases", "dependencies", "suppliers", "plans",
             "plan_reviews", "drills", "drill_findings", "assets", "service_assets", "incidents", "changes"]}


# -- change history -----------------------------------------------------------------------------

CHANGE_STREAM = 14   # the change history's random stream: [seed, CHANGE_STREAM]
CHANGES_PER_YEAR = 0.6   # per service, on average (platforms 2.0 a year): the changes that reach the plans
CHANGE_TITLES = ["Apply security patches", "Upgrade database engine", "Rotate TLS certificates",
                 "Migrate to new storage tier", "Firewall rule update", "Scale out application cluster",
                 "Move batch schedule", "Upgrade operating system", "Replace load balancer", "Change DNS records",
                 "Reconfigure replication", "Deploy new release", "Decommission old server",
                 "Move workload to cloud region"]
_CHANGE_TYPES = [("standard", "Standard", 0.55), ("normal", "Normal", 0.38), ("emergency", "Emergency", 0.07)]
_CLOSE_CODES = [("successful", "Successful", 0.90), ("successful with issues", "Successful with issues", 0.06),
                ("unsuccessful", "Unsuccessful", 0.04)]
ON_A_SERVER = 0.4   # the share of a service's changes made to one of the servers it runs on


def _servers_by_service(assets: pd.DataFrame, service_assets: pd.DataFrame) -> dict[str, list[tuple[str, str]]]:
    """service_id -> [(asset_id, name)] of the servers it runs on, in the order they were made."""
    servers = service_assets.merge(assets[assets["asset_class"] == "server"][["asset_id", "name"]], on="asset_id")
    return {service_id: list(zip(group["asset_id"], group["name"], strict=True))
            for service_id, group in servers.groupby("service_id", sort=False)}


def _change_history(rng: np.random.Generator, services: pd.DataFrame, as_of: dt.date,
                    servers: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    """ServiceNow change records against the services and the servers they run on (`servers`) over
    the demo's history, and a few scheduled beyond the as-of date: mostly standard and normal, some
    emergency, a few cancelled or unsuccessful; about 3 % name a host the inventory does not know
    (unmatched CI names). A change to a server is matched to the asset, as the import matches a CI
    that is an asset's name, and reaches the service through service_assets (docs/DESIGN.md §16)."""
    start = dt.datetime.combine(as_of, dt.time()) - dt.timedelta(days=HISTORY_DAYS)
    now = dt.datetime.combine(as_of, dt.time())
    rows = []
    platforms = len(PLATFORMS)
    for index, service in enumerate(services.itertuples()):
        rate = 2.0 if index < platforms else CHANGES_PER_YEAR * rng.lognormal(-0.3, 0.8)
        for _ in range(int(rng.poisson(rate * (HISTORY_DAYS + 30) / 365))):
            planned_start = (start + dt.timedelta(days=int(rng.integers(0, HISTORY_DAYS + 30)),
                                                  hours=int(rng.integers(18, 24))))
            planned_end = planned_start + dt.timedelta(hours=int(rng.integers(1, 5)))
            kind = int(rng.choice(3, p=[p for _, _, p in _CHANGE_TYPES]))
            work_end = planned_end + dt.timedelta(minutes=int(rng.normal(0, 25)))
            closed_at = work_end + dt.timedelta(days=float(rng.uniform(0.5, 6)))
            code = int(rng.choice(3, p=[p for _, _, p in _CLOSE_CODES]))
            if planned_start > now:
                state, state_raw, work_end, closed_at, code = "planned", "Scheduled", None, None, None
            elif rng.random() < 0.07:
                state, state_raw, work_end, code = "cancelled", "Canceled", None, None
            elif work_end > now:
                state, state_raw, work_end, closed_at, code = "in progress", "Implement", None, None, None
            elif closed_at > now:
                state, state_raw, closed_at = "implemented", "Review", None
            else:
                state, state_raw = "closed", "Closed"
            number = f"CHG{len(rows) + 30_001:07d}"
            unmatched = rng.random() < 0.03
            ci_name, service_id, asset_id = service.name, service.service_id, None
            own_servers = servers.get(service.service_id, [])
            if unmatched:
                ci_name, service_id = f"srv-{int(rng.integers(1000, 9999))}", None
            elif own_servers and rng.random() < ON_A_SERVER:
                asset_id, ci_name = own_servers[int(rng.integers(0, len(own_servers)))]
                service_id = None
            rows.append({
                "source": "servicenow", "number": number,
                "title": str(rng.choice(CHANGE_TITLES)),
                "ci_name": ci_name, "service_id": service_id, "asset_id": asset_id,
                "change_type": _CHANGE_TYPES[kind][0], "type_raw": _CHANGE_TYPES[kind][1],
                "state": state, "state_raw": state_raw,
                "close_code": _CLOSE_CODES[code][0] if code is not None else None,
                "close_code_raw": _CLOSE_CODES[code][1] if code is not None else None,
                "planned_start": planned_start, "planned_end": planned_end, "work_end": work_end,
                "closed_at": closed_at,
                "completed_at": (work_end or planned_end or closed_at) if state in ("implemented", "closed") else None,
                "upload_id": None,
            })
    frame = pd.DataFrame(rows)
    for column in ("planned_start", "planned_end", "work_end", "closed_at", "completed_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


# Each finding a drill counts, as an item of its own (what, owner, due 60 days after the drill), so
# the service card, the findings list and the owner worklist show the same findings. Most findings of
# drills more than four months old have been closed since; the drills' counts of open findings
# then say so.
DRILL_FINDINGS_SQL = ["""
INSERT INTO drill_findings (finding_id, drill_id, what, owner, due_on, state, recorded_by, recorded_at)
SELECT drill_id || '-f' || n, drill_id,
       ['Runbook step out of date', 'Failover took longer than planned', 'Contact list incomplete',
        'Backup restore not verified', 'Monitoring alert missed'][(n + length(drill_id)) % 5 + 1],
       owner, (held_on + INTERVAL 60 DAY)::DATE,
       CASE WHEN held_on < $as_of - INTERVAL 120 DAY AND (n + length(drill_id)) % 4 <> 0 THEN 'closed' ELSE 'open' END,
       'demo', held_on::TIMESTAMP
FROM (SELECT d.drill_id, d.held_on, s.owner, unnest(range(1, d.open_findings + 1)) AS n
      FROM drills d JOIN services s ON s.service_id = d.service_id WHERE d.open_findings > 0)
""", """
UPDATE drills SET open_findings = (
    SELECT count(*) FROM drill_findings f WHERE f.drill_id = drills.drill_id AND f.state = 'open')
WHERE open_findings > 0
"""]


# -- organisation -----------------------------------------------------------------------------


def _units() -> pd.DataFrame:
    ids = {name: f"bu-{i + 1:02d}" for i, (name, _, _) in enumerate(UNITS)}
    return pd.DataFrame({"unit_id": [ids[n] for n, _, _ in UNITS], "name": [n for n, _, _ in UNITS],
                         "parent_unit_id": [ids.get(p) if p else None for _, p, _ in UNITS],
                         "head": [h for _, _, h in UNITS]})


def _service_names(count: int) -> tuple[list[str], list[str], list[str]]:
    """Unique names, their unit and their base name: platforms first, then unit catalogues with
    variants, then numbered instances when the catalogue runs out."""
    names, units, bases = [], [], []
    for name, unit, _, _ in PLATFORMS:
        names.append(name), units.append(unit), bases.append(name)
    catalogue = [(unit, base) for unit, bases_ in SERVICES_BY_UNIT.items() for base in bases_]
    round_ = 0
    while len(names) < count:
        for unit, base in catalogue:
            if len(names) >= count:
                break
            variant = VARIANTS[round_ % len(VARIANTS)]
            number = round_ // len(VARIANTS)
            names.append(f"{base}{variant}" + (f" {number + 1}" if number else ""))
            units.append(unit)
            bases.append(base)
        round_ += 1
    return names[:count], units[:count], bases[:count]


def _services(rng: np.random.Generator, units: pd.DataFrame, count: int) -> pd.DataFrame:
    names, unit_names, bases = _service_names(count)
    unit_ids = dict(zip(units["name"], units["unit_id"], strict=True))
    platforms = len(PLATFORMS)
    tiers = np.concatenate([[t for _, _, t, _ in PLATFORMS],
                            rng.choice([1, 2, 3, 4], size=count - platforms, p=[0.08, 0.20, 0.35, 0.37])])
    rto = np.array([rto for _, _, _, rto in PLATFORMS]
                   + [int(rng.choice(RTO_CHOICES[t])) for t in tiers[platforms:]], dtype=float)
    rpo = np.minimum(rto, np.round(rto * rng.choice([0.05, 0.25, 0.5, 1.0], size=count)))
    rpo = np.maximum(rpo, 5)
    mtpd = rto * rng.choice([2, 3, 4, 6], size=count)
    low = np.array([COST_PER_HOUR[t][0] for t in tiers])
    high = np.array([COST_PER_HOUR[t][1] for t in tiers])
    cost = np.round(np.exp(rng.uniform(np.log(low), np.log(high))), -1)
    strategy = [str(rng.choice(STRATEGY_BY_TIER[t][0], p=STRATEGY_BY_TIER[t][1])) for t in tiers]
    frame = pd.DataFrame({
        "service_id": [f"svc-{i + 1:05d}" for i in range(count)], "service_key": np.arange(1, count + 1),
        "name": names, "base": bases,
        "unit_id": [unit_ids[u] for u in unit_names], "tier": tiers.astype(int),
        "owner": rng.choice(PEOPLE, size=count), "rto_minutes": rto, "rpo_minutes": rpo, "mtpd_minutes": mtpd,
        "impact_cost_per_hour": cost, "recovery_strategy": strategy, "lifecycle": "live",
    })
    # The gaps a real inventory has, each in a believable share of services.
    gaps = rng.random((7, count))
    gaps[:, :platforms] = 1.0  # the platforms are well documented
    frame.loc[gaps[0] < 0.03, "rpo_minutes"] = np.nan
    frame.loc[gaps[1] < 0.04, "impact_cost_per_hour"] = np.nan
    frame.loc[gaps[2] < 0.02, "recovery_strategy"] = "none"
    frame.loc[gaps[3] < 0.02, "mtpd_minutes"] = frame["rto_minutes"] * 0.5          # RTO > MTPD
    frame.loc[gaps[4] < 0.02, "rpo_minutes"] = frame["rto_minutes"] * 2             # RPO > RTO
    frame.loc[(gaps[5] < 0.03) & (frame["tier"] == 1), "rto_minutes"] = 1440.0       # tier vs RTO
    frame.loc[gaps[6] < 0.03, "lifecycle"] = "retired"
    for column in ("rto_minutes", "rpo_minutes", "mtpd_minutes"):
        frame[column] = frame[column].round().astype("Int64")
    return frame


def _initials(name: str) -> str:
    letters = "".join(word[0] for word in name.replace("&", " ").split() if word[0].isalpha())
    return (letters.upper() + "XX")[:4]


def _aliases(services: pd.DataFrame) -> pd.DataFrame:
    """Three names per service as the tools write them: a CMDB CI, a PagerDuty service and a Jira
    component. Each is unique, so one alias matches exactly one service."""
    rows = []
    for index, (service_id, name) in enumerate(zip(services["service_id"], services["name"], strict=True)):
        slug = "-".join(name.lower().replace("&", "and").split())
        for alias, origin in ((f"{_initials(name)}-PROD-{index + 1:04d}", "cmdb"),
                              (f"{slug}-{index + 1}", "pagerduty"), (f"{name} [{index + 1}]", "jira")):
            rows.append((alias, alias.strip().lower(), service_id, origin))
    return pd.DataFrame(rows, columns=["alias", "alias_key", "service_id", "origin"])


def _dependencies(rng: np.random.Generator, services: pd.DataFrame) -> pd.DataFrame:
    """Edges only to earlier services (acyclic), many to the shared platforms."""
    ids = services["service_id"].to_list()
    platforms = len(PLATFORMS)
    edges = set()
    for index in range(1, len(ids)):
        hubs = rng.choice(platforms, size=min(platforms, int(rng.integers(0, 3))), replace=False) \
            if index >= platforms else []
        for hub in hubs:
            if hub < index:
                edges.add((ids[index], ids[int(hub)]))
        for _ in range(int(rng.poisson(0.8))):
            target = int(rng.integers(0, index))
            edges.add((ids[index], ids[target]))
    return pd.DataFrame(sorted(edges), columns=["service_id", "depends_on_id"])


def _suppliers(rng: np.random.Generator, services: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    suppliers = pd.DataFrame({"supplier_id": [f"sup-{i + 1:02d}" for i in range(len(SUPPLIERS))],
                              "name": [n for n, _ in SUPPLIERS],
                              "contracted_recovery_minutes": [m for _, m in SUPPLIERS]})
    weights = 1.0 / np.arange(1, len(SUPPLIERS) + 1) ** 1.1   # a few suppliers carry most services
    weights /= weights.sum()
    links = set()
    for service_id in services["service_id"]:
        for supplier in rng.choice(len(SUPPLIERS), size=int(rng.integers(0, 3)), replace=False, p=weights):
            links.add((service_id, suppliers["supplier_id"].iloc[int(supplier)]))
    return suppliers, pd.DataFrame(sorted(links), columns=["service_id", "supplier_id"])


RESILIENCE_STREAM = 13   # the random stream of the facts resilience analysis reads (docs/DESIGN.md §14)
SUBSTITUTABILITY = ["easy", "moderate", "hard"]


def _resilience_facts(rng: np.random.Generator, dependencies: pd.DataFrame, suppliers: pd.DataFrame,
                      as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a real estate has beside the edges: about one dependency in five with a working
    alternative (a failure does not spread along it), and per supplier how replaceable it is and
    when its contract ends (some within the year, a few already past). The cloud providers are
    hard to replace, so the largest of them carries a large share of the critical services."""
    dependencies = dependencies.assign(has_alternative=rng.random(len(dependencies)) < 0.2)
    substitutability = [str(rng.choice(SUBSTITUTABILITY, p=[0.3, 0.4, 0.3])) for _ in range(len(suppliers))]
    for position, name in enumerate(suppliers["name"]):
        if name in ("AWS", "Microsoft Azure", "Google Cloud", "Temenos", "Fiserv"):
            substitutability[position] = "hard"
    contract_end = [as_of + dt.timedelta(days=int(days)) for days in rng.integers(-60, 3 * 365, size=len(suppliers))]
    return dependencies, suppliers.assign(substitutability=substitutability, contract_end=contract_end)
ASSET_STREAM = 0xA55E7   # the assets' random stream: np.random.default_rng([seed, ASSET_STREAM])
# id, name, class, location, supplier (by name), verified how: the places and clouds services are
# hosted on, shared by many services.
SITES = [("SITE-LON1", "London DC1 (primary)", "site", "London", None, "review"),
         ("SITE-DUB2", "Dublin DC2 (secondary)", "site", "Dublin", None, "review"),
         ("SITE-LD5", "Equinix LD5 colocation", "site", "Slough", "Equinix", "review"),
         ("CLD-AWS-PROD", "AWS eu-west-2 production account", "cloud service", "eu-west-2", "AWS", "discovery"),
         ("CLD-AZ-PROD", "Azure UK South production subscription", "cloud service", "uksouth", "Microsoft Azure",
          "discovery"),
         ("CLD-GCP-DATA", "Google Cloud europe-west2 data project", "cloud service", "europe-west2", "Google Cloud",
          "discovery")]
# Shared database clusters the larger services use.
DATABASE_CLUSTERS = [("DB-ORA-01", "ora-prod-cluster-01", "Oracle"), ("DB-ORA-02", "ora-prod-cluster-02", "Oracle"),
                     ("DB-SQL-01", "mssql-prod-ag-01", None), ("DB-PG-01", "pg-prod-cluster-01", None)]


def _assets(rng: np.random.Generator, services: pd.DataFrame, suppliers: pd.DataFrame,
            as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The servers, databases, sites and cloud services behind each service, with the gaps of a
    real inventory: most assets discovered or audited recently, some long ago (an agent that
    stopped reporting, an audit that slipped), a few never verified, and the sites reviewed once a
    year, so some of them are past a critical tier's interval."""
    supplier_ids = dict(zip(suppliers["name"], suppliers["supplier_id"], strict=True))
    assets: list[tuple] = []
    links: list[tuple] = []

    def verified(how: str) -> tuple[dt.date | None, str | None]:
        draw = rng.random()
        if draw < 0.05:
            return None, None                                                  # never verified
        if how == "review":
            return as_of - dt.timedelta(days=int(rng.integers(20, 400))), how  # a yearly walk-round
        if draw < 0.17:
            return as_of - dt.timedelta(days=int(rng.integers(91, 500))), how  # gone quiet
        return as_of - dt.timedelta(days=int(rng.integers(0, 85))), how

    for asset_id, name, asset_class, location, supplier, how in SITES + [
            (a, n, "database", "London", s, "discovery") for a, n, s in DATABASE_CLUSTERS]:
        last, by = verified(how)
        owner = {"site": "Data Centre Operations", "cloud service": "Cloud Platform Team"}.get(asset_class,
                                                                                               "Database Team")
        assets.append((asset_id, name, asset_class, location, owner, supplier_ids.get(supplier), "live", last, by))
    server = 0
    for row in services.itertuples():
        if row.lifecycle != "live" and rng.random() < 0.5:
            continue   # half the retired services' assets were decommissioned with them (and unlinked)
        initials = _initials(row.name).lower()
        site = SITES[int(rng.choice(len(SITES), p=[0.35, 0.15, 0.1, 0.2, 0.15, 0.05]))]
        links.append((row.service_id, site[0], "hosted on"))
        on_cloud = site[2] == "cloud service"
        for _ in range(int(rng.integers(1, 4 if row.tier <= 2 else 3))):
            server += 1
            last, by = verified("discovery" if rng.random() < 0.8 else "audit")
            lifecycle = "retired" if rng.random() < 0.02 else "live"
            assets.append((f"SRV-{server:05d}", f"{initials}-{'vm' if on_cloud else 'app'}-{server:05d}", "server",
                           site[3], row.owner, supplier_ids.get(site[4]), lifecycle, last, by))
            links.append((row.service_id, f"SRV-{server:05d}", "runs on"))
        if row.tier <= 2 and rng.random() < 0.6:
            cluster = DATABASE_CLUSTERS[int(rng.integers(0, len(DATABASE_CLUSTERS)))]
            links.append((row.service_id, cluster[0], "depends on"))
    asset_frame = pd.DataFrame(assets, columns=["asset_id", "name", "asset_class", "location", "owner", "supplier_id",
                                                "lifecycle", "last_verified", "verified_by"])
    asset_frame["class_raw"] = None
    asset_frame["status_raw"] = None
    link_frame = pd.DataFrame(links, columns=["service_id", "asset_id", "relation"]).drop_duplicates(
        ["service_id", "asset_id"])
    return asset_frame, link_frame


def _plans_reviews_drills(rng: np.random.Generator, services: pd.DataFrame, as_of: dt.date):
    start = as_of - dt.timedelta(days=HISTORY_DAYS)
    plans, reviews, drills = [], [], []
    no_plan_share = {1: 0.05, 2: 0.08, 3: 0.15, 4: 0.30}
    for row in services.itertuples():
        tier = int(row.tier)
        if row.Index >= len(PLATFORMS) and rng.random() < no_plan_share[tier]:
            continue
        plan_id = f"plan-{len(plans) + 1:05d}"
        if rng.random() < 0.05:   # an older plan, retired when this one replaced it
            plans.append((f"{plan_id}-old", row.service_id, f"{row.name} recovery plan (superseded)",
                          row.owner, "retired", start - dt.timedelta(days=400)))
        status = "draft" if rng.random() < 0.07 else "approved"
        approved_on = start + dt.timedelta(days=int(rng.integers(0, 400)))
        plans.append((plan_id, row.service_id, f"{row.name} recovery plan", row.owner, status,
                       approved_on if status == "approved" else None))
        reviews += _review_history(rng, plan_id, approved_on, as_of, tier, row.owner)
        drills += _drill_history(rng, plan_id, row, approved_on, as_of)
    plan_frame = pd.DataFrame(plans, columns=["plan_id", "service_id", "title", "owner", "status", "approved_on"])
    review_frame = pd.DataFrame(reviews, columns=["plan_id", "reviewed_on", "reviewed_by"])
    drill_frame = pd.DataFrame(drills, columns=["drill_id", "service_id", "plan_id", "held_on", "drill_type",
                                                "outcome", "rta_minutes", "data_loss_minutes", "open_findings"])
    drill_frame["drill_id"] = [f"drill-{i + 1:06d}" for i in range(len(drill_frame))]
    for column in ("rta_minutes", "data_loss_minutes"):
        drill_frame[column] = drill_frame[column].astype("Int64")
    return plan_frame, review_frame, drill_frame


def _review_history(rng, plan_id, approved_on, as_of, tier, owner) -> list[tuple]:
    if rng.random() < 0.03:
        return []   # approved and never looked at again
    neglected_after = as_of - dt.timedelta(days=int(rng.integers(200, 700))) if rng.random() < 0.08 else as_of
    reviews, day = [], approved_on
    while day <= min(as_of, neglected_after):
        reviews.append((plan_id, day, owner if rng.random() < 0.7 else str(rng.choice(PEOPLE))))
        day += dt.timedelta(days=int(REVIEW_EVERY_DAYS[tier] * rng.uniform(0.7, 1.25)))
    return reviews


def _drill_history(rng, plan_id, service, approved_on, as_of) -> list[tuple]:
    tier = int(service.tier)
    if rng.random() < 0.04:
        return []   # never tested
    types_by_tier = {1: [0.05, 0.15, 0.45, 0.25, 0.10], 2: [0.10, 0.35, 0.40, 0.15, 0.0],
                     3: [0.40, 0.40, 0.20, 0.0, 0.0], 4: [0.60, 0.35, 0.05, 0.0, 0.0]}
    rto = service.rto_minutes if pd.notna(service.rto_minutes) else 240
    stops_testing = rng.random() < 0.06
    drills, day = [], approved_on + dt.timedelta(days=int(rng.integers(10, 120)))
    last_day = as_of - dt.timedelta(days=int(rng.integers(200, 600))) if stops_testing else as_of
    while day <= last_day:
        drill_type = DRILL_TYPES[int(rng.choice(5, p=types_by_tier[tier]))]
        outcome = str(rng.choice(["passed", "partial", "failed"], p=[0.8, 0.12, 0.08]))
        measured = drill_type in ("simulation", "parallel", "full interruption")
        ratio = rng.lognormal(np.log(0.6), 0.3) * (1.8 if outcome == "failed" else 1.0)
        rta = int(max(5, round(rto * ratio))) if measured else None
        loss = int(rng.integers(0, 60)) if measured else None
        findings = int(rng.poisson(0.4 if outcome == "passed" else 2.5))
        drills.append((None, service.service_id, plan_id, day, drill_type, outcome, rta, loss, findings))
        day += dt.timedelta(days=int(TEST_EVERY_DAYS[tier] * rng.uniform(0.6, 1.2)))
    return drills


# -- incidents --------------------------------------------------------------------------------


def _insert_incident_names(cursor, services: pd.DataFrame, aliases: pd.DataFrame) -> None:
    """How each tool names each service: ServiceNow the CMDB CI, PagerDuty its service, Jira its
    component, Opsgenie the plain name."""
    by_origin = aliases.pivot(index="service_id", columns="origin", values="alias")
    names = pd.DataFrame({
        "service_index": np.arange(len(services)),
        "service_id": services["service_id"].to_numpy(),
        "servicenow": by_origin.loc[services["service_id"], "cmdb"].to_numpy(),
        "pagerduty": by_origin.loc[services["service_id"], "pagerduty"].to_numpy(),
        "jira": by_origin.loc[services["service_id"], "jira"].to_numpy(),
        "opsgenie": services["name"].to_numpy(),
        "rto_minutes": services["rto_minutes"].astype("float64").fillna(240.0).to_numpy(),
    })
    cursor.register("names", names)
    cursor.execute("CREATE TEMP TABLE demo_incident_names AS SELECT * FROM names")
    cursor.unregister("names")


def _incident_numbers(rng: np.random.Generator, services: pd.DataFrame, start: int, count: int,
                      as_of: dt.date, total: int) -> pa.Table:
    """One chunk of incidents as numbers; SQL turns them into rows."""
    as_of_end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    end_us = int(as_of_end.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
    span_us = HISTORY_DAYS * 86_400 * 1_000_000
    # Slightly more incidents in recent months: density grows linearly over the history (0.6 + 0.8 x
    # on [0, 1], whose distribution function is F(x) = 0.6 x + 0.4 x^2). Chunk k of K takes the k-th
    # K-quantile slice of it, so the incidents are stored in time order, as a store filled by
    # imports over the years is, and DuckDB's zone maps can skip the row groups outside a period.
    chunks = max(1, -(-total // INCIDENT_CHUNK))
    quantile = (start // INCIDENT_CHUNK + rng.random(count)) / chunks
    position = (np.sqrt(0.36 + 1.6 * quantile) - 0.6) / 0.8
    opened = end_us - (span_us * (1 - position)).astype(np.int64)
    opened = np.minimum(opened, end_us - 60_000_000)
    # Critical services have fewer incidents (more resilient designs), but every tier has some.
    tier_weight = np.array([0.25, 0.5, 1.0, 1.3])[services["tier"].to_numpy() - 1]
    weights = rng.lognormal(0, 1.0, size=len(services)) * tier_weight
    weights /= weights.sum()
    service_index = rng.choice(len(services), size=count, p=weights)
    rto = services["rto_minutes"].astype("float64").fillna(240.0).to_numpy()[service_index]
    tier = services["tier"].to_numpy()[service_index]
    priority = rng.choice([1, 2, 3, 4], size=count, p=[0.04, 0.12, 0.44, 0.40])
    # Restore times are log-normal: critical services recover in proportion to their RTO (most
    # within it, a believable tail past it); the rest take hours whatever their long RTO says.
    skew = rng.lognormal(0, 0.95, size=count)
    relative = rto * 0.3 * skew * np.where(priority <= 2, 0.8, 1.2)
    absolute = np.where(tier == 3, 150.0, 300.0) * skew ** 1.5
    restore_us = (np.maximum(np.where(tier <= 2, relative, absolute), 2.0) * 60_000_000).astype(np.int64)
    resolve_us = restore_us + (rng.exponential(90, size=count) * 60_000_000).astype(np.int64)
    close_us = resolve_us + (rng.uniform(1, 6, size=count) * 86_400 * 1_000_000).astype(np.int64)
    shape = rng.random(count)
    return pa.table({
        "n": np.arange(start, start + count, dtype=np.int64),
        "service_index": service_index.astype(np.int64),
        "source": rng.choice(4, size=count, p=[0.55, 0.2, 0.15, 0.1]).astype(np.int8),
        "priority": priority.astype(np.int8),
        "title_index": rng.integers(1, len(TITLES) + 1, size=count).astype(np.int16),
        "name_case": rng.choice(3, size=count, p=[0.8, 0.1, 0.1]).astype(np.int8),
        "unmatched": rng.random(count) < 0.025,
        "opened_us": opened,
        "restored_us": opened + restore_us,
        "resolved_us": opened + resolve_us,
        "closed_us": opened + close_us,
        "no_restore": shape < 0.10,                  # only resolve time: the restore is an estimate
        "no_times": (shape >= 0.10) & (shape < 0.102),  # closed with no restore or resolve time
        "end_us": np.full(count, end_us, dtype=np.int64),
    })


# Numbers -> incident rows. Anything that would end after the as-of date has not happened yet:
# such an incident is still open. The select gives every fact (itscm/incident_columns.py) in its
# declared order, then the upload (none) and the service key; the other derived columns are left
# to the store's upkeep.
INCIDENTS_FROM_NUMBERS_SQL = f"""
INSERT INTO incidents ({", ".join(FACT_COLUMNS)}, upload_id, service_key)
WITH numbered AS (
    SELECT x.*, names.service_id AS true_service_id,
           ['servicenow', 'pagerduty', 'jira', 'opsgenie'][x.source + 1] AS source_name,
           CASE x.source WHEN 0 THEN names.servicenow WHEN 1 THEN names.pagerduty
                         WHEN 2 THEN names.jira ELSE names.opsgenie END AS logged_name
    FROM incident_numbers x JOIN demo_incident_names names USING (service_index)
)
SELECT
    CASE source WHEN 0 THEN 'servicenow:INC' || lpad((n + 1000000)::VARCHAR, 8, '0')
                WHEN 1 THEN 'pagerduty:P' || (n + 10000)::VARCHAR
                WHEN 2 THEN 'jira:ITSM-' || (n + 1)::VARCHAR
                ELSE 'opsgenie:' || (n + 1)::VARCHAR END,
    source_name,
    CASE WHEN unmatched THEN NULL ELSE true_service_id END,
    CASE WHEN unmatched THEN 'LEGACY-' || upper(left(md5(logged_name), 6))
         WHEN name_case = 1 THEN lower(logged_name)
         WHEN name_case = 2 THEN upper(logged_name)
         ELSE logged_name END,
    $titles[title_index],
    priority,
    CASE source WHEN 0 THEN ['1 - Critical', '2 - High', '3 - Moderate', '4 - Low'][priority]
                WHEN 1 THEN CASE WHEN priority <= 2 THEN 'high' ELSE 'low' END
                WHEN 2 THEN ['Highest', 'High', 'Medium', 'Low'][priority]
                ELSE 'P' || priority::VARCHAR END,
    make_timestamp(opened_us),
    CASE WHEN no_restore OR no_times OR restored_us >= end_us THEN NULL ELSE make_timestamp(restored_us) END,
    CASE WHEN no_times OR resolved_us >= end_us THEN NULL ELSE make_timestamp(resolved_us) END,
    CASE WHEN closed_us >= end_us OR (NOT no_times AND resolved_us >= end_us) THEN NULL
         ELSE make_timestamp(closed_us) END,
    -- ServiceNow's major incident state: half of its priority 1 incidents accepted as major
    CASE WHEN source = 0 THEN priority = 1 AND n % 2 = 0 END,
    NULL,
    CASE WHEN unmatched THEN NULL ELSE service_index + 1 END
FROM numbered
-- In time order: DuckDB's zone maps then skip the row groups outside a measure's period.
ORDER BY opened_us
"""
