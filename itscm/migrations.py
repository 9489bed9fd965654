"""Ordered schema migrations of the continuity store.

Each migration is applied once, in order, inside one transaction, and recorded in
`schema_version`. An existing store upgrades in place; a store whose version is newer than the
last migration here is refused (see `store.py`), never recreated.

No PRIMARY KEY, UNIQUE or sequences: the store must also run on a DuckLake catalog
(docs/DESIGN.md §10.2), which has none of them. Uniqueness of ids is the import code's job and is tested.

Frozen: each migration is literal SQL and this module imports nothing, so what a version means
never changes after it shipped (a restore replays them to rebuild a backup's schema). Migrations
make tables and columns only. The derived columns and the monthly rollup are filled by the
current code (itscm/rollup.py: `rebuild`), which the store runs after applying a migration listed
in DERIVED_DATA_VERSIONS, or whenever they were never filled; a later change to what the rollup
holds adds a migration there, so every store rebuilds it once.
"""

from __future__ import annotations

# Version 1: the concepts of docs/DESIGN.md §5.2.
V1_CORE = """
CREATE TABLE business_units (
    unit_id         TEXT NOT NULL,
    name            TEXT NOT NULL,
    parent_unit_id  TEXT,
    head            TEXT
);

CREATE TABLE services (
    service_id            TEXT NOT NULL,
    name                  TEXT NOT NULL,
    unit_id               TEXT,
    tier                  INTEGER,          -- 1 = mission critical .. 4
    owner                 TEXT,
    rto_minutes           INTEGER,
    rpo_minutes           INTEGER,
    mtpd_minutes          INTEGER,
    impact_cost_per_hour  DOUBLE,           -- from the BIA, store currency
    recovery_strategy     TEXT,             -- active-active, hot, warm, cold, manual, none
    lifecycle             TEXT NOT NULL DEFAULT 'live'   -- live, retired
);

-- Names under which a service appears in incident logs; matched case-insensitively on alias_key.
CREATE TABLE service_aliases (
    alias       TEXT NOT NULL,
    alias_key   TEXT NOT NULL,              -- lower(trim(alias))
    service_id  TEXT NOT NULL,
    origin      TEXT                        -- cmdb, pagerduty, jira, mapped by analyst, ...
);

CREATE TABLE dependencies (
    service_id     TEXT NOT NULL,
    depends_on_id  TEXT NOT NULL
);

CREATE TABLE suppliers (
    supplier_id                   TEXT NOT NULL,
    name                          TEXT NOT NULL,
    contracted_recovery_minutes   INTEGER
);

CREATE TABLE service_suppliers (
    service_id   TEXT NOT NULL,
    supplier_id  TEXT NOT NULL
);

CREATE TABLE plans (
    plan_id      TEXT NOT NULL,
    service_id   TEXT NOT NULL,
    title        TEXT,
    owner        TEXT,
    status       TEXT NOT NULL,             -- draft, approved, retired
    approved_on  DATE
);

CREATE TABLE plan_reviews (
    plan_id      TEXT NOT NULL,
    reviewed_on  DATE NOT NULL,
    reviewed_by  TEXT
);

CREATE TABLE drills (
    drill_id            TEXT NOT NULL,
    service_id          TEXT NOT NULL,
    plan_id             TEXT,
    held_on             DATE NOT NULL,
    drill_type          TEXT NOT NULL,      -- walkthrough, tabletop, simulation, parallel, full interruption
    outcome             TEXT NOT NULL,      -- passed, partial, failed
    rta_minutes         INTEGER,
    data_loss_minutes   INTEGER,
    open_findings       INTEGER NOT NULL DEFAULT 0
);

-- Column names documented for analysts who query the file with their own tools.
CREATE TABLE incidents (
    incident_id   TEXT NOT NULL,            -- source-qualified, e.g. servicenow:INC0012345
    source        TEXT NOT NULL,
    service_id    TEXT,                     -- NULL when service_name matches no service or alias
    service_name  TEXT,                     -- the name as the source system wrote it
    title         TEXT,
    priority      INTEGER,                  -- 1..4
    priority_raw  TEXT,
    opened_at     TIMESTAMP NOT NULL,       -- UTC
    restored_at   TIMESTAMP,
    resolved_at   TIMESTAMP,
    closed_at     TIMESTAMP,
    upload_id     TEXT
);

CREATE TABLE uploads (
    upload_id     TEXT NOT NULL,
    file_name     TEXT,
    sha256        TEXT,
    format        TEXT,
    uploaded_by   TEXT,
    uploaded_at   TIMESTAMP NOT NULL,
    rows_read     INTEGER NOT NULL DEFAULT 0,
    inserted      INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    rejected      INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL,            -- committed, undone
    undone_at     TIMESTAMP,
    undone_by     TEXT
);

CREATE TABLE policy (
    tier                  INTEGER NOT NULL,
    review_interval_days  INTEGER NOT NULL,
    test_interval_days    INTEGER NOT NULL,
    min_test_type         TEXT NOT NULL,
    is_critical           BOOLEAN NOT NULL
);

INSERT INTO policy VALUES
    (1, 180, 365, 'simulation',  TRUE),
    (2, 365, 365, 'tabletop',    TRUE),
    (3, 365, 730, 'walkthrough', FALSE),
    (4, 730, 1095, 'walkthrough', FALSE);

-- Bumped by every write, so cached query results can be keyed on it.
CREATE TABLE store_meta (
    key    TEXT NOT NULL,
    value  TEXT
);
INSERT INTO store_meta VALUES ('data_version', '0'), ('currency', 'EUR');
"""

# Version 2: what undoing an upload needs. An upload that updates incidents keeps their prior
# state here, so undo restores exactly what was there before; saved column mappings for
# unrecognised CSV headers.
V2_UPLOAD_HISTORY = """
CREATE TABLE incident_prior_versions (
    upload_id     TEXT NOT NULL,            -- the upload that replaced this version
    incident_id   TEXT NOT NULL,
    source        TEXT NOT NULL,
    service_id    TEXT,
    service_name  TEXT,
    title         TEXT,
    priority      INTEGER,
    priority_raw  TEXT,
    opened_at     TIMESTAMP NOT NULL,
    restored_at   TIMESTAMP,
    resolved_at   TIMESTAMP,
    closed_at     TIMESTAMP,
    prior_upload_id TEXT
);

CREATE TABLE column_mappings (
    name        TEXT NOT NULL,
    mapping     TEXT NOT NULL,              -- JSON object field -> column
    created_by  TEXT,
    created_at  TIMESTAMP NOT NULL
);
"""

# Version 3: who may do what when people sign in (itscm/access.py), and who mapped a service
# name. role_grants is a history: the latest grant for a principal wins, earlier ones stay as the
# record of who granted what and when.
V3_ROLES_AND_ATTRIBUTION = """
CREATE TABLE role_grants (
    principal   TEXT NOT NULL,              -- an email (lower case) or '@domain'
    role        TEXT NOT NULL,              -- viewer, analyst, admin
    granted_by  TEXT,
    granted_at  TIMESTAMP NOT NULL
);

ALTER TABLE service_aliases ADD COLUMN mapped_by TEXT;
ALTER TABLE service_aliases ADD COLUMN mapped_at TIMESTAMP;
"""

# Version 4: integer service keys and the stored outage end, so the measures' hot paths join on
# integers and never recompute an outage (filled by itscm/rollup.py).
V4_DERIVED_COLUMNS = """
ALTER TABLE services ADD COLUMN service_key INTEGER;
ALTER TABLE incidents ADD COLUMN service_key INTEGER;
ALTER TABLE incidents ADD COLUMN outage_end TIMESTAMP;     -- restored_at, else resolved_at (an estimate)
ALTER TABLE incidents ADD COLUMN rta_minutes DOUBLE;       -- outage_end - opened_at, in minutes
"""

# Version 5: admin changes to the inventory, the policy and the targets, and backups taken from
# the app, each with who, when, and the fields before and after (itscm/administration.py). The
# other changes record their author in their own tables (uploads, service_aliases, role_grants,
# column_mappings); itscm/administration.change_history reads them all as one list.
V5_CHANGE_LOG = """
CREATE TABLE change_log (
    changed_at  TIMESTAMP NOT NULL,
    changed_by  TEXT,
    action      TEXT NOT NULL,              -- edit service, edit policy, set target, backup
    subject     TEXT,                       -- service id, tier, target name, backup folder
    before      TEXT,                       -- JSON object of the changed fields as they were
    after       TEXT                        -- JSON object of the same fields as they are now
);
"""

# Version 6: the monthly incident rollup the period measures read their whole months from, and
# active_until, which lets the scans for incidents without an outage end skip row groups (both
# filled by itscm/rollup.py).
V6_MONTHLY_ROLLUP = """
ALTER TABLE incidents ADD COLUMN active_until TIMESTAMP;  -- outage end, else closed_at, else 'infinity' (open)

CREATE TABLE incident_months (
    service_key     INTEGER,            -- NULL: no service (unmatched, or a service gone)
    unmatched       BOOLEAN NOT NULL,   -- the incident names no known service
    unmatched_name  TEXT,               -- the name logged, for unmatched incidents
    month           DATE NOT NULL,      -- first day of the calendar month
    opened          INTEGER NOT NULL,   -- incidents opened this month with an outage end
    estimated       INTEGER NOT NULL,   -- ... whose end is the resolve time (an estimate)
    attained        INTEGER NOT NULL,   -- ... whose RTA is within the service's RTO
    no_end          INTEGER NOT NULL,   -- incidents opened this month with no outage end
    band_1 INTEGER NOT NULL,
    band_2 INTEGER NOT NULL,
    band_3 INTEGER NOT NULL,
    band_4 INTEGER NOT NULL,
    band_5 INTEGER NOT NULL,
    band_6 INTEGER NOT NULL,
    outage_seconds  DOUBLE NOT NULL,    -- outage time of ended incidents inside this month
    breach_seconds  DOUBLE NOT NULL     -- of which past opened_at + RTO
);

-- Per month incidents were opened in: how many, a fingerprint of the facts the rollup reads,
-- and the last month any of them reached (so a change rebuilds every month it touched).
CREATE TABLE incident_month_marks (
    month        DATE NOT NULL,
    incidents    BIGINT NOT NULL,
    fingerprint  BIGINT NOT NULL,
    last_month   DATE NOT NULL
);

-- The RTO each service's rollup rows were computed with.
CREATE TABLE incident_month_rtos (
    service_key  INTEGER NOT NULL,
    rto_minutes  INTEGER
);
"""


# Version 7: the organisation's own inventory from a workbook (itscm/workbook/). Facts the
# workbook carries that the demo did not: whether a dependency has a working alternative, how
# replaceable a supplier is and when its contract ends, where a plan's document lives, what a
# review concluded, and the findings of a drill. Every import is recorded (inventory_imports, like
# uploads) with the rows it replaced, so undo restores exactly: per row written, its key and the
# row before (JSON of every column; NULL for a row the import added) and after (JSON of the
# columns the import wrote; NULL for a row it removed), so undo can tell whether anything changed
# the row since.
V7_INVENTORY_WORKBOOK = """
ALTER TABLE dependencies ADD COLUMN has_alternative BOOLEAN;
ALTER TABLE suppliers ADD COLUMN substitutability TEXT;
ALTER TABLE suppliers ADD COLUMN contract_end DATE;
ALTER TABLE plans ADD COLUMN document_link TEXT;
ALTER TABLE plan_reviews ADD COLUMN outcome TEXT;
ALTER TABLE plan_reviews ADD COLUMN notes TEXT;

CREATE TABLE drill_findings (
    finding_id   TEXT NOT NULL,
    drill_id     TEXT NOT NULL,
    what         TEXT NOT NULL,
    owner        TEXT,
    due_on       DATE,
    state        TEXT NOT NULL,             -- open, closed, risk accepted
    recorded_by  TEXT,                      -- who wrote this version of the finding
    recorded_at  TIMESTAMP
);

CREATE TABLE inventory_imports (
    import_id       TEXT NOT NULL,
    files           TEXT NOT NULL,          -- JSON list of the file names, in the order read
    sha256s         TEXT NOT NULL,          -- JSON list, one per file
    imported_by     TEXT,
    imported_at     TIMESTAMP NOT NULL,
    retire_missing  BOOLEAN NOT NULL,
    rows_read       INTEGER NOT NULL DEFAULT 0,
    rejected        INTEGER NOT NULL DEFAULT 0,
    counts          TEXT NOT NULL,          -- JSON {table: {inserted, updated, retired, ...}}
    state           TEXT NOT NULL,          -- committed, undone
    undone_at       TIMESTAMP,
    undone_by       TEXT
);

CREATE TABLE inventory_prior_rows (
    import_id   TEXT NOT NULL,
    table_name  TEXT NOT NULL,
    row_key     TEXT NOT NULL,              -- JSON object of the table's key columns
    action      TEXT NOT NULL,              -- insert, update, delete
    before_row  TEXT,                       -- JSON object of the whole row before; NULL for insert
    after_row   TEXT                        -- JSON object of the written columns after; NULL for delete
);
"""

# Version 8: the hardware and software behind services (assets) and which service runs on which,
# and how often the assets behind a tier's services must be verified (audit, discovery or review)
# for the inventory currency measure. Assets come from the inventory workbook's assets and
# service_assets sheets and from Snipe-IT and ServiceNow CI exports (itscm/workbook/).
V8_ASSETS = """
CREATE TABLE assets (
    asset_id        TEXT NOT NULL,          -- the asset tag or CI name as the source keys it
    name            TEXT NOT NULL,
    asset_class     TEXT,                   -- server, database, application, network, cloud service, site, other
    class_raw       TEXT,                   -- the class as the source wrote it (Snipe-IT category, sys_class_name)
    location        TEXT,
    owner           TEXT,
    supplier_id     TEXT,
    lifecycle       TEXT NOT NULL DEFAULT 'live',   -- live, retired
    status_raw      TEXT,                   -- the status as the source wrote it
    last_verified   DATE,                   -- last audit, discovery or review
    verified_by     TEXT                    -- audit, discovery, review
);

CREATE TABLE service_assets (
    service_id  TEXT NOT NULL,
    asset_id    TEXT NOT NULL,
    relation    TEXT                        -- runs on, hosted on, depends on
);

ALTER TABLE policy ADD COLUMN asset_verify_interval_days INTEGER;
UPDATE policy SET asset_verify_interval_days = CASE WHEN is_critical THEN 90 ELSE 365 END;
"""

# Version 9: resilience analysis (docs/DESIGN.md §14). The longest RTO a tier allows (its band
# runs from the ceiling of the tier above it, exclusive, to its own, inclusive), the share of
# critical services one supplier may carry before the Overview raises a flag, and scenarios saved by
# name (failed nodes as a JSON list of "kind:key"; hours NULL = each failed node's own recovery time).
V9_RESILIENCE = """
ALTER TABLE policy ADD COLUMN rto_ceiling_minutes INTEGER;
UPDATE policy SET rto_ceiling_minutes = CASE tier WHEN 1 THEN 240 WHEN 2 THEN 1440 WHEN 3 THEN 4320
                                                  WHEN 4 THEN 10080 END;

INSERT INTO store_meta (key, value) VALUES ('supplier_concentration_pct', '25');

CREATE TABLE saved_scenarios (
    name        TEXT NOT NULL,
    failed      TEXT NOT NULL,              -- JSON list of "kind:key", e.g. ["supplier:sup-01", "service:svc-7"]
    hours       DOUBLE,                     -- NULL: each failed node for its own recovery time
    saved_by    TEXT,
    saved_at    TIMESTAMP NOT NULL
);
"""

# Version 12: which incidents are continuity events (docs/DESIGN.md §17), one rule for the store;
# whether the source marked an incident major (a fact, kept per version like the others); and the
# monthly rollup kept per scope: its rows say whether their incidents are continuity events, so
# that "continuity events" and "all incidents" are both read from whole months. The rollup is
# derived data (rebuilt after this migration), so its table is made afresh.
V12_CONTINUITY_EVENTS = """
CREATE TABLE continuity_event_rule (
    max_priority      INTEGER,              -- priorities 1 .. this are continuity events; NULL: none by priority
    outage_past_rto   BOOLEAN NOT NULL,     -- an outage longer than its service's RTO is one
    marked_major      BOOLEAN NOT NULL,     -- an incident the source marked major is one
    default_events    TEXT NOT NULL         -- continuity | all: the scope pages and summary show unless asked
);
INSERT INTO continuity_event_rule VALUES (2, TRUE, TRUE, 'all');

ALTER TABLE incidents ADD COLUMN major BOOLEAN;                 -- NULL: the source did not say
ALTER TABLE incident_prior_versions ADD COLUMN major BOOLEAN;

DROP TABLE incident_months;
CREATE TABLE incident_months (
    service_key     INTEGER,
    unmatched       BOOLEAN NOT NULL,
    unmatched_name  TEXT,
    continuity      BOOLEAN NOT NULL,   -- the row's incidents are continuity events (by the rule)
    month           DATE NOT NULL,
    opened          INTEGER NOT NULL,
    estimated       INTEGER NOT NULL,
    attained        INTEGER NOT NULL,
    no_end          INTEGER NOT NULL,
    band_1 INTEGER NOT NULL,
    band_2 INTEGER NOT NULL,
    band_3 INTEGER NOT NULL,
    band_4 INTEGER NOT NULL,
    band_5 INTEGER NOT NULL,
    band_6 INTEGER NOT NULL,
    outage_seconds  DOUBLE NOT NULL,
    breach_seconds  DOUBLE NOT NULL
);
"""

# Version 10: changes to the services and the assets behind them (ServiceNow change_request, Jira
# Service Management change requests, the generic template; itscm/changes/), so that a plan
# whose service changed after its last review is flagged (docs/DESIGN.md §16). Change uploads are
# recorded like incident uploads, in their own tables so that neither undo can touch the other's
# rows; change_prior_versions keeps each change an upload replaced. change_ci_mappings holds the
# analyst's answer for a CI name that matched nothing. The policy switch says whether a plan
# changed since review fails the coverage control "plan reviewed in interval".
V10_CHANGES = """
CREATE TABLE changes (
    change_id        TEXT NOT NULL,         -- source-qualified, e.g. servicenow:CHG0030001
    source           TEXT NOT NULL,
    number           TEXT NOT NULL,         -- the number as the source wrote it
    title            TEXT,
    ci_name          TEXT,                  -- the configuration item / component as written
    service_id       TEXT,                  -- the service the CI name matched, if any
    asset_id         TEXT,                  -- the asset the CI name matched, if any
    change_type      TEXT,                  -- standard, normal, emergency; NULL when not recognised
    type_raw         TEXT,
    state            TEXT,                  -- planned, in progress, implemented, closed, cancelled (NULL: unknown)
    state_raw        TEXT,
    close_code       TEXT,                  -- successful, successful with issues, unsuccessful
    close_code_raw   TEXT,
    planned_start    TIMESTAMP,             -- UTC
    planned_end      TIMESTAMP,
    work_end         TIMESTAMP,             -- when the work actually ended
    closed_at        TIMESTAMP,
    completed_at     TIMESTAMP,             -- implemented or closed: work_end, else planned_end, else closed_at
    upload_id        TEXT
);

CREATE TABLE change_prior_versions (
    upload_id        TEXT NOT NULL,         -- the change upload that replaced this version
    change_id        TEXT NOT NULL,
    source           TEXT NOT NULL,
    number           TEXT NOT NULL,
    title            TEXT,
    ci_name          TEXT,
    service_id       TEXT,
    asset_id         TEXT,
    change_type      TEXT,
    type_raw         TEXT,
    state            TEXT,
    state_raw        TEXT,
    close_code       TEXT,
    close_code_raw   TEXT,
    planned_start    TIMESTAMP,
    planned_end      TIMESTAMP,
    work_end         TIMESTAMP,
    closed_at        TIMESTAMP,
    completed_at     TIMESTAMP,
    prior_upload_id  TEXT
);

CREATE TABLE change_uploads (
    upload_id     TEXT NOT NULL,
    file_name     TEXT,
    sha256        TEXT,
    format        TEXT,
    uploaded_by   TEXT,
    uploaded_at   TIMESTAMP NOT NULL,
    rows_read     INTEGER NOT NULL DEFAULT 0,
    inserted      INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    rejected      INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL,            -- committed, undone
    undone_at     TIMESTAMP,
    undone_by     TEXT
);

CREATE TABLE change_ci_mappings (
    ci_key      TEXT NOT NULL,              -- lower(trim(ci_name))
    ci_name     TEXT NOT NULL,
    service_id  TEXT,
    asset_id    TEXT,
    mapped_by   TEXT,
    mapped_at   TIMESTAMP NOT NULL
);

-- 'true', not TRUE: DuckLake takes only literal defaults (same default; written TRUE before #16).
ALTER TABLE policy ADD COLUMN change_fails_review BOOLEAN DEFAULT 'true';
UPDATE policy SET change_fails_review = TRUE;
"""

# Version 13: the completed change days per service (docs/DESIGN.md §16.4), so that the staleness
# and coverage measures read one small row per service and month instead of every change. One row
# per service and calendar month with a completed change reaching the service (its CI is the
# service, or an asset the service runs on): that month's days, ascending, each with its completed
# changes and how many of them were emergency or unsuccessful; and, so that a reader finds the row
# answering for any date by one equality join, what came before it and where the next row is.
# Derived from changes and service_assets, filled and kept current by itscm/change_days.py.
V13_CHANGE_DAYS = """
CREATE TABLE service_change_days (
    service_id      TEXT NOT NULL,
    month           DATE NOT NULL,          -- the first day of the month
    days            DATE[] NOT NULL,        -- the days a completed change reached the service, ascending
    changes         INTEGER[] NOT NULL,     -- completed changes on each of those days
    marked          INTEGER[] NOT NULL,     -- of which emergency or unsuccessful
    changes_before  INTEGER NOT NULL,       -- completed changes that reached the service before the month
    last_before     DATE,                   -- the latest such day before the month
    next_month      DATE                    -- the service's next row, NULL for its last
);
"""

# Version 14: a change's key is (source, number), no longer also stored joined as change_id
# ('servicenow:CHG0030001'). The joined text repeated two columns in every row of the largest
# table after incidents: about a fifth of the million-change insert's CPU (docs/PERFORMANCE.md) and
# 5 MB of 47; a reader that shows the id builds it from the two. DROP COLUMN, not a rebuilt
# table: DuckLake supports it (it never rewrites data files; ALTER COLUMN TYPE it does not).
V14_CHANGE_KEY = """
ALTER TABLE changes DROP COLUMN change_id;
ALTER TABLE change_prior_versions DROP COLUMN change_id;
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "core continuity schema", V1_CORE),
    (2, "upload history for undo, saved column mappings", V2_UPLOAD_HISTORY),
    (4, "integer service keys and stored outage end for the measures' hot paths", V4_DERIVED_COLUMNS),
    (3, "role grants for signed-in users, who mapped a service name", V3_ROLES_AND_ATTRIBUTION),
    (5, "change log of admin edits and backups", V5_CHANGE_LOG),
    (6, "monthly incident rollup and active_until for the period measures", V6_MONTHLY_ROLLUP),
    (7, "inventory workbook: new inventory facts, drill findings, inventory imports and their undo",
     V7_INVENTORY_WORKBOOK),
    (8, "assets behind services and their verification interval per tier", V8_ASSETS),
    (9, "resilience: RTO ceiling per tier, supplier concentration threshold, saved scenarios", V9_RESILIENCE),
    (12, "the continuity event rule, and the monthly rollup kept per scope", V12_CONTINUITY_EVENTS),
    (10, "changes, change uploads and their undo, a change since review fails the review control",
     V10_CHANGES),
    (13, "completed change days per service and month for the staleness and coverage measures", V13_CHANGE_DAYS),
    (14, "a change's key is its source and number, without the joined change_id", V14_CHANGE_KEY),
]

MIGRATIONS.sort()
LATEST_VERSION = MIGRATIONS[-1][0]

# The migrations that add or change derived data: once one of them is applied, the store fills
# the derived columns and the rollup with the current rebuild (itscm/store.py).
DERIVED_DATA_VERSIONS = (4, 6, 12)
# ... and the migrations after which the change days are filled afresh (itscm/change_days.py).
CHANGE_DAYS_VERSIONS = (13,)
