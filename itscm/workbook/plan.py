"""What an import would do: the rows read, resolved against the store and compared with it, in SQL.

`make_plan(cursor, read, retire_missing)` leaves one temp table per store table, `inv_plan_<table>`
(one row per row to write or compare: its key, the values it would write, `has_<column>` for the
columns its file carries, `action` insert / update / unchanged / rejected / retire / delete, and
the spreadsheet row it came from), and returns a `PlanSummary`: counts per sheet, every field that
would change (old -> new), the stored rows absent from the files, and the problems found.
`drop_plan(cursor)` removes the temp tables; the commit (itscm/workbook/commit.py) writes from them.

Rows are resolved in the order they refer to each other: business units, services (and aliases),
suppliers, assets, dependencies, service_suppliers, service_assets, plans, reviews, drills, findings.
A reference is matched case- and space-insensitively: to a service by id, then by name or alias; to
a unit or a supplier by name; to an asset by id, then by name; to a plan, a drill by id. A unit or
supplier named but known nowhere is created
(and reported); an unknown service, plan or drill rejects the row. A row whose key repeats an
earlier row's is rejected. Each statement's SQL is constant; values are parameters or come from
tables.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from itscm.workbook.cycles import strongly_connected
from itscm.workbook.formats import SERVICENOW_RELATIONSHIPS
from itscm.workbook.read import ReadResult, Source
from itscm.workbook.sheets import ALIAS_SEPARATOR, SHEETS_BY_NAME
from itscm.workbook.targets import FIELD_COLUMNS, ID_PREFIXES, RETIRE, TARGETS, TARGETS_BY_TABLE, Target

# A name or id as matched: lower case, every kind of space removed ("Core  Ledger" = "core ledger").
KEY_MACRO = r"CREATE OR REPLACE TEMP MACRO inv_key(x) AS regexp_replace(lower(x), '[\s\p{Z}]+', '', 'g')"


COUNT_KEYS = ("inserted", "updated", "unchanged", "retired", "rejected", "absent")


@dataclass
class PlanSummary:
    tables: dict[str, dict[str, int]]            # sheet -> inserted, updated, unchanged, retired, rejected, absent
    changes: pd.DataFrame                        # sheet, row_key, field, old, new, src, row_no
    absent: pd.DataFrame                         # sheet, row_key, action (absent, retire, delete, kept)
    problems: list[dict]                         # as ReadResult.problems

    @property
    def writes(self) -> int:
        """Rows the commit would write: 0 means the store already says all of it."""
        return sum(counts["inserted"] + counts["updated"] + counts["retired"] for counts in self.tables.values())


# -- helpers --------------------------------------------------------------------------------------


def _slug(text: str | None) -> str:
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40] or "x"


class _Planner:
    def __init__(self, cur, read: ReadResult, retire_missing: frozenset[str]):
        self.cur = cur
        self.read = read
        self.retire_missing = retire_missing        # sheet names
        self.problems: list[dict] = []
        self.sources = {source.src: source for source in read.sources}
        self.present = {name for name, table in read.typed.items() if table.num_rows}

    def sql(self, statement: str, params: dict | None = None) -> list[tuple]:
        return self.cur.execute(statement, params or {}).fetchall()

    # -- rejection --------------------------------------------------------------------------------

    def reject(self, sheet: str, condition: str, field_name: str | None, reason_sql: str,
               params: dict | None = None) -> None:
        """Reject the accepted rows of `sheet` meeting `condition` (constant SQL over its rows,
        aliased r), recording `reason_sql` (constant SQL) against `field_name`'s column."""
        rows = self.sql(f"""
            SELECT r.src, r.row_no, {reason_sql}, {f'CAST(r.{field_name} AS VARCHAR)' if field_name else 'NULL'}
            FROM inv_{sheet} r WHERE r.ok AND ({condition})
        """, params)
        if not rows:
            return
        self.sql(f"UPDATE inv_{sheet} r SET ok = FALSE WHERE r.ok AND ({condition})", params)
        for src, row_no, reason, value in rows:
            source: Source | None = self.sources.get(src)     # None: a unit or supplier the import creates
            self.problems.append({"file": source.file if source else None, "sheet": sheet,
                                  "row": row_no if source else None,
                                  "column": source.header_of(field_name) if source and field_name else None,
                                  "severity": "error", "reason": reason, "value": value})

    def warn(self, sheet: str | None, reason: str, *, file: str | None = None, row=None, column=None,
             value=None) -> None:
        self.problems.append({"file": file, "sheet": sheet, "row": row, "column": column, "severity": "warning",
                              "reason": reason, "value": value})

    def reject_repeats(self, sheet: str, key_sql: str, what: str) -> None:
        """Reject every accepted row whose key (constant SQL over r) repeats an earlier row's."""
        repeated = self.sql(f"SELECT count(*) - count(DISTINCT {key_sql}) FROM inv_{sheet} r "
                            f"WHERE r.ok AND ({key_sql}) IS NOT NULL")[0][0]
        if not repeated:   # the usual case, found without a window over every row
            return
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE inv_repeats AS
            SELECT src, row_no, first_src, first_row FROM (
                SELECT r.src, r.row_no,
                       first_value(r.src) OVER w AS first_src, first_value(r.row_no) OVER w AS first_row
                FROM inv_{sheet} r WHERE r.ok AND ({key_sql}) IS NOT NULL
                WINDOW w AS (PARTITION BY {key_sql} ORDER BY r.src, r.row_no)
            ) WHERE (src, row_no) <> (first_src, first_row)
        """)
        self.reject(sheet, "EXISTS (SELECT 1 FROM inv_repeats x WHERE x.src = r.src AND x.row_no = r.row_no)", None,
                    f"format('the same {what} as row {{}}{{}}', (SELECT x.first_row FROM inv_repeats x "
                    "WHERE x.src = r.src AND x.row_no = r.row_no), CASE WHEN (SELECT x.first_src FROM inv_repeats x "
                    "WHERE x.src = r.src AND x.row_no = r.row_no) <> r.src THEN ' of another file' ELSE '' END)")
        self.sql("DROP TABLE inv_repeats")

    # -- ids ----------------------------------------------------------------------------------------

    def assign_ids(self, sheet: str, id_column: str, base_sql: str, store_table: str, store_id: str) -> None:
        """Ids for new rows without one: prefix-slug of `base_sql` (constant SQL over r), made
        unique against the store and the other rows (made here: DuckLake has no sequences, docs/DESIGN.md)."""
        wanted = self.sql(f"SELECT r.src, r.row_no, {base_sql} FROM inv_{sheet} r "
                          f"WHERE r.{id_column} IS NULL AND r.ok ORDER BY r.src, r.row_no")
        if not wanted:
            return
        prefix = ID_PREFIXES[sheet] + "-"
        taken = {key for (key,) in self.sql(f"SELECT inv_key({store_id}) FROM {store_table} "
                                            f"WHERE starts_with(lower({store_id}), $prefix)", {"prefix": prefix})}
        taken |= {key for (key,) in self.sql(f"SELECT inv_key({id_column}) FROM inv_{sheet} "
                                             f"WHERE {id_column} IS NOT NULL")}
        made = []
        for src, row_no, base in wanted:
            stem = prefix + _slug(base)
            candidate, number = stem, 1
            while candidate in taken:
                number += 1
                candidate = f"{stem}-{number}"
            taken.add(candidate)
            made.append((src, row_no, candidate))
        self.cur.register("inv_made_ids", pa.table({"src": pa.array([m[0] for m in made], pa.int32()),
                                                    "row_no": pa.array([m[1] for m in made], pa.int32()),
                                                    "made": pa.array([m[2] for m in made], pa.string())}))
        try:
            self.sql(f"UPDATE inv_{sheet} r SET {id_column} = m.made, is_new = TRUE FROM inv_made_ids m "
                     "WHERE m.src = r.src AND m.row_no = r.row_no")
        finally:
            self.cur.unregister("inv_made_ids")

    # -- loading ------------------------------------------------------------------------------------

    def load(self, sheet: str, extra: str, joins: str = "", replace: str = "", keys: tuple[str, ...] = ()) -> None:
        """inv_<sheet>: the sheet's typed rows (t) plus the resolution columns `extra`, computed in
        the same statement from the tables `joins` adds (constant SQL): one pass over the rows
        instead of an UPDATE per reference."""
        table = self.read.typed.get(sheet)
        if table is None:
            typed = SHEETS_BY_NAME[sheet]
            types = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(), "DATE": pa.date32(),
                     "BOOLEAN": pa.bool_()}
            table = pa.table({name: pa.array([], kind) for name, kind in
                              [("src", pa.int32()), ("row_no", pa.int32()), ("ok", pa.bool_())]
                              + [(c.field, types[c.store_type]) for c in typed.columns]
                              + [(f"has_{c.field}", pa.bool_()) for c in typed.columns]})
        # Each reference's matching key, computed once per row for every join that uses it.
        key_columns = "".join(f", inv_key({name}) AS {name}_key" for name in keys)
        # A sheet without rows: its columns alone. DuckDB builds a join's stored side even when
        # nothing probes it (every stored drill's key, for a file of assets); LIMIT 0 prunes it.
        empty = "" if table.num_rows else " LIMIT 0"
        self.cur.register("inv_typed", table)
        try:
            self.sql(f"CREATE OR REPLACE TEMP TABLE inv_{sheet} AS "
                     f"SELECT t.*{replace}, {extra} FROM (SELECT *{key_columns} FROM inv_typed) t {joins}{empty}")
        finally:
            self.cur.unregister("inv_typed")

    @staticmethod
    def service_ref(field_name: str, id_column: str) -> tuple[str, str]:
        """(columns, joins) resolving t.<field_name> to <id_column>: by id, else by a name or alias
        naming one service; <id_column>_matches counts the services a name names. The sheet is
        loaded with the key of <field_name>."""
        ids, names = f"{id_column}_by_id", f"{id_column}_by_name"
        return (f"coalesce({ids}.service_id, CASE WHEN {names}.n = 1 THEN {names}.service_id END) AS {id_column}, "
                f"{names}.n AS {id_column}_matches",
                f"LEFT JOIN inv_service_ids {ids} ON {ids}.k = t.{field_name}_key "
                f"LEFT JOIN inv_service_names {names} ON {names}.k = t.{field_name}_key")

    @staticmethod
    def id_ref(field_name: str, id_column: str, index: str) -> tuple[str, str]:
        alias = f"{id_column}_by_id"
        return (f"{alias}.{id_column} AS {id_column}",
                f"LEFT JOIN {index} {alias} ON {alias}.k = t.{field_name}_key")

    @staticmethod
    def own_id(id_column: str, store_table: str) -> tuple[str, str, str]:
        """(replace, columns, joins): a row's given id replaced by the stored row's it names (any
        case and spacing), the given one kept as given_id."""
        return (f" REPLACE (coalesce(own.{id_column}, t.{id_column}) AS {id_column})", f"t.{id_column} AS given_id",
                f"LEFT JOIN (SELECT inv_key({id_column}) AS k, min({id_column}) AS {id_column} FROM {store_table} "
                f"GROUP BY ALL HAVING count(*) = 1) own ON own.k = t.{id_column}_key")

    def reject_service_ref(self, sheet: str, field_name: str, id_column: str) -> None:
        unresolved = f"r.{field_name} IS NOT NULL AND r.{id_column} IS NULL"
        self.reject(sheet, f"{unresolved} AND r.{id_column}_matches > 1", field_name,
                    "'names several services: ' || array_to_string((SELECT n.ids FROM inv_service_names n "
                    f"WHERE n.k = r.{field_name}_key), ', ') || '; give the id'")
        self.reject(sheet, unresolved, field_name,
                    "'no such service in the store or among the accepted rows of the services sheet'")

    def reject_id_ref(self, sheet: str, field_name: str, id_column: str, what: str) -> None:
        self.reject(sheet, f"r.{field_name} IS NOT NULL AND r.{id_column} IS NULL", field_name,
                    f"'no such {what} in the store or among the accepted rows of the {what}s sheet'")

    # -- the steps ------------------------------------------------------------------------------

    def business_units(self) -> None:
        self.load("business_units", "NULL::VARCHAR AS unit_id, NULL::VARCHAR AS parent_unit_id, FALSE AS is_new, "
                                    "FALSE AS created")
        self.sql("""
            UPDATE inv_business_units r SET unit_id = m.unit_id
            FROM (SELECT inv_key(name) AS k, min(unit_id) AS unit_id FROM business_units GROUP BY ALL
                  HAVING count(*) = 1) m
            WHERE m.k = inv_key(r.name)
        """)
        self.reject("business_units", "r.unit_id IS NULL AND (SELECT count(*) FROM business_units u "
                    "WHERE inv_key(u.name) = inv_key(r.name)) > 1", "name",
                    "'several stored business units have this name'")
        self.reject_repeats("business_units", "inv_key(r.name)", "business unit")

    def create_units(self) -> None:
        """Units named by services or as parents, known neither in the store nor on the sheet."""
        named = self.sql("""
            SELECT min(name) AS name FROM (
                SELECT unit AS name FROM inv_services WHERE ok AND unit IS NOT NULL
                UNION ALL SELECT parent FROM inv_business_units WHERE ok AND parent IS NOT NULL
            ) n
            WHERE NOT EXISTS (SELECT 1 FROM business_units u WHERE inv_key(u.name) = inv_key(n.name))
              AND NOT EXISTS (SELECT 1 FROM inv_business_units b WHERE inv_key(b.name) = inv_key(n.name))
            GROUP BY inv_key(name) ORDER BY 1
        """)
        for number, (name,) in enumerate(named, start=1):   # src -1, and a row number of its own
            self.sql("INSERT INTO inv_business_units (src, row_no, ok, name, has_name, has_parent, has_head, created) "
                     "VALUES (-1, $row, TRUE, $name, TRUE, FALSE, FALSE, TRUE)", {"name": name, "row": -number})
            self.warn("business_units", "not in the store or on the business_units sheet: created", value=name)
        self.assign_ids("business_units", "unit_id", "r.name", "business_units", "unit_id")
        self.sql("""
            CREATE OR REPLACE TEMP TABLE inv_unit_names AS
            SELECT inv_key(name) AS k, list(DISTINCT unit_id) AS ids FROM (
                SELECT name, unit_id FROM business_units
                WHERE unit_id NOT IN (SELECT unit_id FROM inv_business_units WHERE has_name AND unit_id IS NOT NULL)
                UNION ALL SELECT name, unit_id FROM inv_business_units WHERE ok
            ) GROUP BY ALL
        """)
        self.resolve_unit("business_units", "parent", "parent_unit_id")
        self.reject("business_units", "r.parent_unit_id = r.unit_id", "parent", "'a unit cannot be its own parent'")

    def resolve_unit(self, sheet: str, field_name: str, id_column: str) -> None:
        self.sql(f"""
            UPDATE inv_{sheet} r SET {id_column} = n.ids[1] FROM inv_unit_names n
            WHERE r.ok AND n.k = inv_key(r.{field_name}) AND len(n.ids) = 1
        """)
        unresolved = f"r.{field_name} IS NOT NULL AND r.{id_column} IS NULL"
        named = f"EXISTS (SELECT 1 FROM inv_unit_names n WHERE n.k = inv_key(r.{field_name}))"
        self.reject(sheet, f"{unresolved} AND {named}", field_name, "'several business units have this name'")
        self.reject(sheet, unresolved, field_name, "'no such business unit: its row on the business_units sheet was "
                                                   "rejected'")

    def services(self) -> None:
        self.load("services", "NULL::VARCHAR AS unit_id, FALSE AS is_new, service_id AS given_id")
        self.sql("""
            CREATE OR REPLACE TEMP TABLE inv_stored_service_names AS
            SELECT k, list(DISTINCT service_id ORDER BY service_id) AS ids FROM (
                SELECT inv_key(name) AS k, service_id FROM services
                UNION ALL SELECT inv_key(alias), service_id FROM service_aliases
            ) WHERE k <> '' GROUP BY k
        """)
        # By id first (any case and spacing), then by name or alias for rows without an id.
        self.sql("""
            UPDATE inv_services r SET service_id = s.service_id
            FROM (SELECT inv_key(service_id) AS k, min(service_id) AS service_id FROM services GROUP BY ALL
                  HAVING count(*) = 1) s
            WHERE r.given_id IS NOT NULL AND s.k = inv_key(r.given_id)
        """)
        self.sql("UPDATE inv_services r SET is_new = NOT EXISTS (SELECT 1 FROM services s "
                 "WHERE s.service_id = r.service_id) WHERE r.given_id IS NOT NULL")
        self.sql("""
            UPDATE inv_services r SET service_id = n.ids[1]
            FROM inv_stored_service_names n
            WHERE r.given_id IS NULL AND n.k = inv_key(r.name) AND len(n.ids) = 1
        """)
        self.reject("services", "r.given_id IS NULL AND r.service_id IS NULL AND len((SELECT n.ids FROM "
                    "inv_stored_service_names n WHERE n.k = inv_key(r.name))) > 1", "name",
                    "'names several stored services: ' || array_to_string((SELECT n.ids FROM inv_stored_service_names "
                    "n WHERE n.k = inv_key(r.name)), ', ') || '; give the id'")
        self.reject("services", "r.is_new AND EXISTS (SELECT 1 FROM inv_stored_service_names n "
                    "WHERE n.k = inv_key(r.name))", "service_id",
                    "format('no stored service has this id, but the name matches service {}: leave the id empty or "
                    "give that id', (SELECT n.ids[1] FROM inv_stored_service_names n WHERE n.k = inv_key(r.name)))")
        self.reject("services", "r.service_id IS NULL AND (r.name IS NULL OR NOT r.has_name)", "name",
                    "'a new service needs a name'")
        self.reject("services", "r.is_new AND r.name IS NULL", "name", "'a new service needs a name'")
        self.assign_ids("services", "service_id", "r.name", "services", "service_id")
        self.reject_repeats("services", "inv_key(r.service_id)", "service")

    def service_units(self) -> None:
        self.resolve_unit("services", "unit", "unit_id")

    def service_aliases(self) -> None:
        """The aliases each services row carrying the column asks for, against the store's."""
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE inv_aliases AS
            SELECT r.src, r.row_no, r.service_id, any_value(trim(a)) AS alias, lower(trim(a)) AS alias_key
            FROM inv_services r, unnest(string_split(coalesce(r.aliases, ''), '{ALIAS_SEPARATOR}')) AS t(a)
            WHERE r.ok AND r.has_aliases AND trim(a) <> ''
            GROUP BY ALL
        """)
        # An alias naming another service (its name, or an alias the file does not take from it)
        # would make incident matching ambiguous: the row is rejected.
        self.sql("""
            CREATE OR REPLACE TEMP TABLE inv_alias_clashes AS
            SELECT a.src, a.row_no, any_value(a.alias) AS alias, any_value(o.service_id) AS other
            FROM inv_aliases a JOIN (
                SELECT lower(trim(name)) AS k, service_id FROM services
                WHERE service_id NOT IN (SELECT service_id FROM inv_services WHERE ok AND has_name)
                UNION ALL SELECT lower(trim(name)), service_id FROM inv_services WHERE ok AND has_name
                UNION ALL SELECT alias_key, service_id FROM service_aliases
                WHERE service_id NOT IN (SELECT service_id FROM inv_services WHERE ok AND has_aliases)
                UNION ALL SELECT alias_key, service_id FROM inv_aliases
            ) o ON o.k = a.alias_key AND o.service_id <> a.service_id
            GROUP BY a.src, a.row_no
        """)
        self.reject("services",
                    "EXISTS (SELECT 1 FROM inv_alias_clashes c WHERE c.src = r.src AND c.row_no = r.row_no)",
                    "aliases", "(SELECT format('the alias {} already names service {}', c.alias, c.other) "
                    "FROM inv_alias_clashes c WHERE c.src = r.src AND c.row_no = r.row_no)")
        self.sql("DELETE FROM inv_aliases a WHERE NOT EXISTS (SELECT 1 FROM inv_services r WHERE r.ok "
                 "AND r.src = a.src AND r.row_no = a.row_no)")

    def service_index(self) -> None:
        """Every service a reference may name: stored ones and the accepted rows of the sheet."""
        self.sql("""
            CREATE OR REPLACE TEMP TABLE inv_service_ids AS
            SELECT inv_key(service_id) AS k, min(service_id) AS service_id FROM (
                SELECT service_id FROM services UNION ALL SELECT service_id FROM inv_services WHERE ok
            ) GROUP BY ALL
        """)
        self.sql("""
            CREATE OR REPLACE TEMP TABLE inv_service_names AS
            SELECT k, min(service_id) AS service_id, count(DISTINCT service_id) AS n,
                   list(DISTINCT service_id ORDER BY service_id) AS ids FROM (
                SELECT inv_key(name) AS k, service_id FROM services
                UNION ALL SELECT inv_key(alias), service_id FROM service_aliases
                UNION ALL SELECT inv_key(name), service_id FROM inv_services WHERE ok AND name IS NOT NULL
                UNION ALL SELECT inv_key(alias), service_id FROM inv_aliases
            ) WHERE k <> '' GROUP BY k
        """)

    def suppliers(self) -> None:
        self.load("suppliers", "NULL::VARCHAR AS supplier_id, FALSE AS is_new, FALSE AS created")
        self.sql("""
            UPDATE inv_suppliers r SET supplier_id = m.supplier_id
            FROM (SELECT inv_key(name) AS k, min(supplier_id) AS supplier_id FROM suppliers GROUP BY ALL
                  HAVING count(*) = 1) m
            WHERE m.k = inv_key(r.name)
        """)
        self.reject("suppliers", "r.supplier_id IS NULL AND (SELECT count(*) FROM suppliers s "
                    "WHERE inv_key(s.name) = inv_key(r.name)) > 1", "name", "'several stored suppliers have this name'")
        self.reject_repeats("suppliers", "inv_key(r.name)", "supplier")

    def create_suppliers(self) -> None:
        named = self.sql("""
            SELECT min(supplier) FROM (SELECT supplier FROM inv_service_suppliers WHERE ok
                                       UNION ALL SELECT supplier FROM inv_assets WHERE ok) n
            WHERE supplier IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM suppliers s WHERE inv_key(s.name) = inv_key(n.supplier))
              AND NOT EXISTS (SELECT 1 FROM inv_suppliers s WHERE inv_key(s.name) = inv_key(n.supplier))
            GROUP BY inv_key(supplier) ORDER BY 1
        """)
        for number, (name,) in enumerate(named, start=1):
            self.sql("INSERT INTO inv_suppliers (src, row_no, ok, name, has_name, has_contracted_recovery_minutes, "
                     "has_substitutability, has_contract_end, created) "
                     "VALUES (-1, $row, TRUE, $name, TRUE, FALSE, FALSE, FALSE, TRUE)", {"name": name, "row": -number})
            self.warn("suppliers", "not in the store or on the suppliers sheet: created", value=name)
        self.assign_ids("suppliers", "supplier_id", "r.name", "suppliers", "supplier_id")

    def dependencies(self) -> None:
        service, service_joins = self.service_ref("service", "service_id")
        depends_on, depends_on_joins = self.service_ref("depends_on", "depends_on_id")
        self.load("dependencies", f"{service}, {depends_on}", f"{service_joins} {depends_on_joins}",
                  keys=("service", "depends_on"))
        self.dependencies_on_assets()
        self.reject_service_ref("dependencies", "service", "service_id")
        self.reject_service_ref("dependencies", "depends_on", "depends_on_id")
        self.reject_repeats("dependencies", "(r.service_id, r.depends_on_id)", "dependency")

    def dependencies_on_assets(self) -> None:
        """A relationship export's "Depends on::Used by" row whose child is no service but one
        asset (stored or on the assets sheet) says the service depends on that asset: it leaves the
        dependencies for inv_relationship_assets, which service_assets adds to its rows."""
        relationship_srcs = [source.src for source in self.read.sources if source.format == SERVICENOW_RELATIONSHIPS]
        # No relationship export: no row to move, and the indexes of assets are not joined (LIMIT 0).
        none = "" if relationship_srcs else " LIMIT 0"
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE inv_relationship_assets AS
            SELECT r.src, r.row_no, r.ok, r.service, r.depends_on AS asset, 'depends on' AS relation,
                   r.has_service, TRUE AS has_asset, TRUE AS has_relation, r.service_key,
                   r.depends_on_key AS asset_key, r.service_id, r.service_id_matches,
                   coalesce(i.asset_id, n.asset_id) AS asset_id, 1 AS asset_matches
            FROM inv_dependencies r
            LEFT JOIN inv_asset_ids i ON i.k = r.depends_on_key
            LEFT JOIN inv_asset_names n ON n.k = r.depends_on_key AND n.n = 1
            WHERE list_contains($srcs, r.src) AND r.depends_on IS NOT NULL AND r.depends_on_id IS NULL
              AND r.depends_on_id_matches IS NULL AND coalesce(i.asset_id, n.asset_id) IS NOT NULL{none}
        """, {"srcs": relationship_srcs})
        if not relationship_srcs:
            return
        self.sql("DELETE FROM inv_dependencies r WHERE EXISTS (SELECT 1 FROM inv_relationship_assets a "
                 "WHERE a.src = r.src AND a.row_no = r.row_no)")

    def service_suppliers(self) -> None:
        service, joins = self.service_ref("service", "service_id")
        self.load("service_suppliers", f"{service}, NULL::VARCHAR AS supplier_id", joins, keys=("service",))
        self.reject_service_ref("service_suppliers", "service", "service_id")

    def service_supplier_links(self) -> None:
        self.sql("""
            CREATE OR REPLACE TEMP TABLE inv_supplier_names AS
            SELECT inv_key(name) AS k, list(DISTINCT supplier_id) AS ids FROM (
                SELECT name, supplier_id FROM suppliers
                WHERE supplier_id NOT IN (SELECT supplier_id FROM inv_suppliers WHERE supplier_id IS NOT NULL)
                UNION ALL SELECT name, supplier_id FROM inv_suppliers WHERE ok) GROUP BY ALL
        """)
        self.sql("""
            UPDATE inv_service_suppliers r SET supplier_id = m.ids[1] FROM inv_supplier_names m
            WHERE r.ok AND m.k = inv_key(r.supplier) AND len(m.ids) = 1
        """)
        self.reject("service_suppliers", "r.supplier_id IS NULL AND EXISTS (SELECT 1 FROM inv_supplier_names m "
                    "WHERE m.k = inv_key(r.supplier))", "supplier", "'several suppliers have this name'")
        self.reject("service_suppliers", "r.supplier_id IS NULL", "supplier",
                    "'no such supplier: its row on the suppliers sheet was rejected'")
        self.reject_repeats("service_suppliers", "(r.service_id, r.supplier_id)", "link")

    def assets(self) -> None:
        replace, given, own_joins = self.own_id("asset_id", "assets")
        self.load("assets", f"{given}, FALSE AS is_new, NULL::VARCHAR AS supplier_id", own_joins, replace,
                  keys=("asset_id",))
        if self.without_id("assets"):
            # Without an id: the stored asset of that name, if just one.
            self.sql("""
                UPDATE inv_assets r SET asset_id = s.asset_id
                FROM (SELECT inv_key(name) AS k, min(asset_id) AS asset_id, count(*) AS n FROM assets GROUP BY ALL) s
                WHERE r.given_id IS NULL AND s.k = inv_key(r.name) AND s.n = 1
            """)
            self.reject("assets", "r.given_id IS NULL AND r.asset_id IS NULL AND (SELECT count(*) FROM assets s "
                        "WHERE inv_key(s.name) = inv_key(r.name)) > 1", "name",
                        "'several stored assets have this name; give the asset id'")
        self.reject("assets", "r.has_name AND r.name IS NULL", "name", "'an asset needs a name'")
        self.reject("assets", "r.name IS NULL AND NOT EXISTS (SELECT 1 FROM assets s WHERE s.asset_id = r.asset_id)",
                    "name", "'a new asset needs a name'")
        self.assign_ids("assets", "asset_id", "r.name", "assets", "asset_id")
        self.reject_repeats("assets", "inv_key(r.asset_id)", "asset")
        # What a service_assets row (or a relationship export's child) may name: an asset by id,
        # else by a name that one asset has, stored or on the sheet.
        self.sql("""
            CREATE OR REPLACE TEMP TABLE inv_asset_ids AS
            SELECT inv_key(asset_id) AS k, min(asset_id) AS asset_id FROM (
                SELECT asset_id FROM assets UNION ALL SELECT asset_id FROM inv_assets WHERE ok) GROUP BY ALL
        """)
        # By name only when some reference needs it (most files name their assets by id).
        relationships = any(source.format == SERVICENOW_RELATIONSHIPS for source in self.read.sources)
        self.asset_names(needed=relationships)

    def asset_names(self, *, needed: bool) -> None:
        """inv_asset_names: each name one or more assets have, stored or on the sheet; its columns
        alone (LIMIT 0) while no reference is left to resolve by name."""
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE inv_asset_names AS
            SELECT k, min(asset_id) AS asset_id, count(DISTINCT asset_id) AS n FROM (
                SELECT inv_key(name) AS k, asset_id FROM assets
                WHERE asset_id NOT IN (SELECT asset_id FROM inv_assets WHERE ok AND has_name)
                UNION ALL SELECT inv_key(name), asset_id FROM inv_assets WHERE ok AND name IS NOT NULL
            ) WHERE k <> '' GROUP BY k{'' if needed else ' LIMIT 0'}
        """)
        self.asset_names_built = needed

    def asset_suppliers(self) -> None:
        self.sql("""
            UPDATE inv_assets r SET supplier_id = m.ids[1] FROM inv_supplier_names m
            WHERE r.ok AND m.k = inv_key(r.supplier) AND len(m.ids) = 1
        """)
        self.reject("assets", "r.supplier IS NOT NULL AND r.supplier_id IS NULL AND EXISTS (SELECT 1 FROM "
                    "inv_supplier_names m WHERE m.k = inv_key(r.supplier))", "supplier",
                    "'several suppliers have this name'")
        self.reject("assets", "r.supplier IS NOT NULL AND r.supplier_id IS NULL", "supplier",
                    "'no such supplier: its row on the suppliers sheet was rejected'")

    def service_assets(self) -> None:
        service, service_joins = self.service_ref("service", "service_id")
        self.load("service_assets", f"{service}, asset_by_id.asset_id AS asset_id, NULL::BIGINT AS asset_matches",
                  f"{service_joins} LEFT JOIN inv_asset_ids asset_by_id ON asset_by_id.k = t.asset_key",
                  keys=("service", "asset"))
        # An asset not named by its id: by a name one asset has; asset_matches counts the assets it names.
        if self.sql("SELECT count(*) FROM inv_service_assets WHERE asset IS NOT NULL AND asset_id IS NULL")[0][0]:
            if not self.asset_names_built:
                self.asset_names(needed=True)
            self.sql("""
                UPDATE inv_service_assets r SET asset_id = CASE WHEN n.n = 1 THEN n.asset_id END, asset_matches = n.n
                FROM inv_asset_names n WHERE n.k = r.asset_key AND r.asset IS NOT NULL AND r.asset_id IS NULL
            """)
        self.sql("INSERT INTO inv_service_assets BY NAME SELECT * FROM inv_relationship_assets")
        self.reject_service_ref("service_assets", "service", "service_id")
        self.reject("service_assets", "r.asset IS NOT NULL AND r.asset_id IS NULL AND r.asset_matches > 1", "asset",
                    "'names several assets; give the asset id'")
        self.reject("service_assets", "r.asset IS NOT NULL AND r.asset_id IS NULL", "asset",
                    "'no such asset in the store or among the accepted rows of the assets sheet'")
        self.reject_repeats("service_assets", "(r.service_id, r.asset_id)", "service and asset")

    def plans(self) -> None:
        service, service_joins = self.service_ref("service", "service_id")
        replace, given, own_joins = self.own_id("plan_id", "plans")
        self.load("plans", f"{service}, {given}, FALSE AS is_new", f"{service_joins} {own_joins}", replace,
                  keys=("service", "plan_id"))
        self.reject_service_ref("plans", "service", "service_id")
        if self.without_id("plans"):
            self.match_plans_without_id()
        self.assign_ids("plans", "plan_id", "coalesce(r.service_id, r.service)", "plans", "plan_id")
        self.reject_repeats("plans", "inv_key(r.plan_id)", "plan")
        self.id_index("inv_plan_ids", "plans", "plan_id", needed_by=("plan_reviews", "drills"))

    def id_index(self, index: str, sheet: str, id_column: str, *, needed_by: tuple[str, ...]) -> None:
        """`index`: every id a reference may name (stored, and the accepted rows of the sheet) by its
        key; empty when no sheet of the files refers to it (a file of assets alone need not gather
        every stored drill's id)."""
        needed = "" if self.present & set(needed_by) else " LIMIT 0"
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE {index} AS
            SELECT inv_key({id_column}) AS k, min({id_column}) AS {id_column} FROM (
                SELECT {id_column} FROM {SHEETS_BY_NAME[sheet].table}
                UNION ALL SELECT {id_column} FROM inv_{sheet} WHERE ok) GROUP BY ALL{needed}
        """)

    def without_id(self, sheet: str) -> bool:
        """Whether some accepted row of the sheet has no id (most files give every id: the
        matching by other columns is then skipped)."""
        return bool(self.sql(f"SELECT count(*) FROM inv_{sheet} WHERE ok AND given_id IS NULL")[0][0])

    def match_plans_without_id(self) -> None:
        # Without an id: the stored plan of the same service with the same title, if just one.
        self.sql("""
            UPDATE inv_plans r SET plan_id = s.plan_id
            FROM (SELECT service_id, inv_key(coalesce(title, '')) AS k, min(plan_id) AS plan_id, count(*) AS n
                  FROM plans GROUP BY ALL) s
            WHERE r.given_id IS NULL AND s.service_id = r.service_id AND s.k = inv_key(coalesce(r.title, ''))
              AND s.n = 1
        """)
        self.reject("plans", "r.given_id IS NULL AND r.plan_id IS NULL AND r.service_id IS NOT NULL AND "
                    "(SELECT count(*) FROM plans s WHERE s.service_id = r.service_id "
                    "AND inv_key(coalesce(s.title, '')) = inv_key(coalesce(r.title, ''))) > 1", "title",
                    "'several stored plans of this service have this title; give the plan id'")

    def plan_reviews(self) -> None:
        plan, joins = self.id_ref("plan", "plan_id", "inv_plan_ids")
        self.load("plan_reviews", plan, joins, keys=("plan",))
        self.reject_id_ref("plan_reviews", "plan", "plan_id", "plan")
        self.reject_repeats("plan_reviews", "(r.plan_id, r.reviewed_on, coalesce(r.reviewed_by, ''))", "review")

    def drills(self) -> None:
        service, service_joins = self.service_ref("service", "service_id")
        plan, plan_joins = self.id_ref("plan", "plan_id", "inv_plan_ids")
        replace, given, own_joins = self.own_id("drill_id", "drills")
        self.load("drills", f"{service}, {plan}, {given}, FALSE AS is_new",
                  f"{service_joins} {plan_joins} {own_joins}", replace, keys=("service", "plan", "drill_id"))
        self.reject_service_ref("drills", "service", "service_id")
        self.reject_id_ref("drills", "plan", "plan_id", "plan")
        if self.without_id("drills"):
            # Without an id: the stored drill of the same service, day and type, if just one.
            self.sql("""
                UPDATE inv_drills r SET drill_id = s.drill_id
                FROM (SELECT service_id, held_on, drill_type, min(drill_id) AS drill_id, count(*) AS n
                      FROM drills GROUP BY ALL) s
                WHERE r.given_id IS NULL AND s.service_id = r.service_id AND s.held_on = r.held_on
                  AND s.drill_type = r.drill_type AND s.n = 1
            """)
            self.reject("drills", "r.given_id IS NULL AND r.drill_id IS NULL AND (SELECT count(*) FROM drills s "
                        "WHERE s.service_id = r.service_id AND s.held_on = r.held_on "
                        "AND s.drill_type = r.drill_type) > 1", "held_on",
                        "'several stored drills of this service were held that day with that type; give the drill id'")
        self.assign_ids("drills", "drill_id", "coalesce(r.service_id, r.service) || '-' || r.held_on",
                        "drills", "drill_id")
        self.reject_repeats("drills", "inv_key(r.drill_id)", "drill")
        self.id_index("inv_drill_ids", "drills", "drill_id", needed_by=("findings",))

    def findings(self) -> None:
        drill, drill_joins = self.id_ref("drill", "drill_id", "inv_drill_ids")
        replace, given, own_joins = self.own_id("finding_id", "drill_findings")
        self.load("findings", f"{drill}, {given}, FALSE AS is_new", f"{drill_joins} {own_joins}", replace,
                  keys=("drill", "finding_id"))
        self.reject_id_ref("findings", "drill", "drill_id", "drill")
        if self.without_id("findings"):
            # Without an id: the stored finding of the same drill with the same text, if just one.
            self.sql("""
                UPDATE inv_findings r SET finding_id = s.finding_id
                FROM (SELECT drill_id, inv_key(what) AS k, min(finding_id) AS finding_id, count(*) AS n
                      FROM drill_findings GROUP BY ALL) s
                WHERE r.given_id IS NULL AND s.drill_id = r.drill_id AND s.k = inv_key(r.what) AND s.n = 1
            """)
        self.assign_ids("findings", "finding_id", "coalesce(r.drill_id, r.drill)", "drill_findings", "finding_id")
        self.reject_repeats("findings", "inv_key(r.finding_id)", "finding")

    # -- comparing with the store ---------------------------------------------------------------------

    def plan_table(self, target: Target, rows_sql: str) -> None:
        """inv_plan_<table> from `rows_sql` (constant SQL giving src, row_no, ok, the target's
        columns and has_<column> for its data columns): each row's action against the store."""
        key_match = " AND ".join(f"s.{k} IS NOT DISTINCT FROM p.{k}" for k in target.key)
        differs = " OR ".join(f"(p.has_{c} AND p.{c} IS DISTINCT FROM s.{c})" for c in target.data) or "FALSE"
        stored = ", ".join(f"s.{c} AS old_{c}" for c in target.data)
        # No row to compare (a sheet the files lack): the stored table is not read.
        rows = self.sql(f"SELECT count(*) FROM ({rows_sql})")[0][0]
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE inv_plan_{target.table} AS
            SELECT p.*, CASE WHEN NOT p.ok THEN 'rejected' WHEN s.{target.key[0]} IS NULL AND NOT s_exists
                             THEN 'insert' WHEN {differs} THEN 'update' ELSE 'unchanged' END AS action
                   {', ' + stored if stored else ''}
            FROM (SELECT *, FALSE AS s_exists FROM ({rows_sql})) p
            LEFT JOIN (SELECT DISTINCT ON ({', '.join(target.key)}) * FROM {target.table}
                       {'' if rows else 'LIMIT 0'}) s ON {key_match}
        """)

    def absent(self, target: Target, sheet: str, matched_sql: str, *, removable_sql: str = "TRUE",
               kept_reason: str = "") -> None:
        """Stored rows of `target` that no row of the sheet names (`matched_sql`: their keys),
        added to the plan as absent: retired or removed with --retire-missing (when
        `removable_sql` over s holds), else only reported."""
        if sheet not in self.present:
            return
        key_match = " AND ".join(f"m.{k} IS NOT DISTINCT FROM s.{k}" for k in target.key)
        retire = RETIRE.get(sheet)
        if retire:
            action = f"CASE WHEN s.{retire[0]} = {retire[1]} THEN 'absent' ELSE 'retire' END"
        else:
            action = f"CASE WHEN {removable_sql} THEN 'delete' ELSE 'kept' END"
        retiring = sheet in self.retire_missing
        rejected = self.sql(f"SELECT count(*) FROM inv_{sheet} WHERE NOT ok")[0][0]
        if retiring and rejected:
            self.warn(sheet, f"{rejected} row(s) of the sheet were rejected, so nothing absent from it is retired "
                             "or removed: correct them and import again")
        if not retiring or rejected:
            action = "'absent'"
        columns = ", ".join(f"s.{c}" for c in target.columns)
        flags = ", ".join(f"{'TRUE' if retire and c == retire[0] else 'FALSE'} AS has_{c}" for c in target.data)
        olds = ", ".join(f"s.{c} AS old_{c}" for c in target.data)
        self.sql(f"""
            INSERT INTO inv_plan_{target.table} BY NAME
            SELECT NULL::INTEGER AS src, NULL::INTEGER AS row_no, TRUE AS ok, {columns}
                   {', ' + flags if flags else ''}, TRUE AS s_exists, {action} AS action
                   {', ' + olds if olds else ''}
            FROM {target.table} s
            WHERE NOT EXISTS (SELECT 1 FROM ({matched_sql}) m WHERE {key_match})
        """)
        if retire and retiring:
            self.sql(f"UPDATE inv_plan_{target.table} SET {retire[0]} = {retire[1]} WHERE action = 'retire'")
        counts = dict(self.sql(f"SELECT action, count(*) FROM inv_plan_{target.table} WHERE src IS NULL "
                               "GROUP BY action"))
        if counts.get("kept"):
            self.warn(sheet, f"{counts['kept']} stored row(s) absent from the files were kept: {kept_reason}")
        if counts.get("absent") and not retiring:
            self.warn(sheet, f"{counts['absent']} stored row(s) are absent from the files and were left as they are "
                             "(--retire-missing would " + ("retire" if retire else "remove") + " them)")

    def compare(self) -> None:
        t = TARGETS_BY_TABLE

        def flags(sheet: str, columns: tuple[str, ...]) -> str:
            fields = {column: field_name for field_name, column in FIELD_COLUMNS[sheet].items()}
            return ", ".join(f"r.has_{fields[c]} AS has_{c}" for c in columns)

        self.plan_table(t["business_units"], f"""
            SELECT r.src, r.row_no, r.ok, r.unit_id, r.name, r.parent_unit_id, r.head,
                   {flags('business_units', ('name', 'parent_unit_id', 'head'))} FROM inv_business_units r""")
        self.plan_table(t["services"], f"""
            SELECT r.src, r.row_no, r.ok, r.service_id, {', '.join('r.' + c for c in t['services'].data)},
                   {flags('services', t['services'].data)} FROM inv_services r""")
        self.plan_table(t["service_aliases"], """
            SELECT a.src, a.row_no, TRUE AS ok, a.service_id, a.alias_key, a.alias, 'inventory workbook' AS origin,
                   TRUE AS has_alias, FALSE AS has_origin FROM inv_aliases a""")
        self.plan_table(t["suppliers"], f"""
            SELECT r.src, r.row_no, r.ok, r.supplier_id, {', '.join('r.' + c for c in t['suppliers'].data)},
                   {flags('suppliers', t['suppliers'].data)} FROM inv_suppliers r""")
        self.plan_table(t["dependencies"], f"""
            SELECT r.src, r.row_no, r.ok, r.service_id, r.depends_on_id, r.has_alternative,
                   {flags('dependencies', ('has_alternative',))} FROM inv_dependencies r""")
        self.plan_table(t["service_suppliers"], """
            SELECT r.src, r.row_no, r.ok, r.service_id, r.supplier_id FROM inv_service_suppliers r""")
        self.plan_table(t["plans"], f"""
            SELECT r.src, r.row_no, r.ok, r.plan_id, {', '.join('r.' + c for c in t['plans'].data)},
                   {flags('plans', t['plans'].data)} FROM inv_plans r""")
        self.plan_table(t["plan_reviews"], f"""
            SELECT r.src, r.row_no, r.ok, r.plan_id, r.reviewed_on, r.reviewed_by, r.outcome, r.notes,
                   {flags('plan_reviews', ('outcome', 'notes'))} FROM inv_plan_reviews r""")
        self.plan_table(t["drills"], f"""
            SELECT r.src, r.row_no, r.ok, r.drill_id, {', '.join('r.' + c for c in t['drills'].data)},
                   {flags('drills', t['drills'].data)} FROM inv_drills r""")
        self.plan_table(t["drill_findings"], f"""
            SELECT r.src, r.row_no, r.ok, r.finding_id, {', '.join('r.' + c for c in t['drill_findings'].data)},
                   {flags('findings', t['drill_findings'].data)} FROM inv_findings r""")
        self.plan_table(t["assets"], f"""
            SELECT r.src, r.row_no, r.ok, r.asset_id, {', '.join('r.' + c for c in t['assets'].data)},
                   {flags('assets', t['assets'].data)} FROM inv_assets r""")
        self.plan_table(t["service_assets"], f"""
            SELECT r.src, r.row_no, r.ok, r.service_id, r.asset_id, r.relation,
                   {flags('service_assets', ('relation',))} FROM inv_service_assets r""")

        # Aliases a services row carrying the column no longer lists: removed with that row's update.
        self.sql("""
            INSERT INTO inv_plan_service_aliases BY NAME
            SELECT NULL::INTEGER AS src, NULL::INTEGER AS row_no, TRUE AS ok, s.service_id, s.alias_key, s.alias,
                   s.origin, FALSE AS has_alias, FALSE AS has_origin, TRUE AS s_exists, 'delete' AS action,
                   s.alias AS old_alias, s.origin AS old_origin
            FROM service_aliases s
            WHERE s.service_id IN (SELECT service_id FROM inv_services WHERE ok AND has_aliases)
              AND NOT EXISTS (SELECT 1 FROM inv_aliases a WHERE a.service_id = s.service_id
                              AND a.alias_key = s.alias_key)
        """)

        # Absent rows, the leaves first: what refers to a unit, a supplier or a drill after the
        # import decides whether --retire-missing may remove it.
        self.absent(t["drill_findings"], "findings", "SELECT finding_id FROM inv_findings WHERE finding_id IS NOT NULL")
        self.absent(t["service_assets"], "service_assets",
                    "SELECT service_id, asset_id FROM inv_service_assets WHERE asset_id IS NOT NULL")
        self.absent(t["assets"], "assets", "SELECT asset_id FROM inv_assets WHERE asset_id IS NOT NULL")
        self.absent(t["drills"], "drills", "SELECT drill_id FROM inv_drills WHERE drill_id IS NOT NULL",
                    removable_sql="""NOT EXISTS (SELECT 1 FROM drill_findings f WHERE f.drill_id = s.drill_id
                                     AND f.finding_id NOT IN (SELECT finding_id FROM inv_plan_drill_findings
                                                              WHERE action = 'delete'))
                                     AND NOT EXISTS (SELECT 1 FROM inv_plan_drill_findings f
                                                     WHERE f.drill_id = s.drill_id
                                                       AND f.action IN ('insert', 'update'))""",
                    kept_reason="findings still refer to them")
        self.absent(t["plan_reviews"], "plan_reviews",
                    "SELECT plan_id, reviewed_on, reviewed_by FROM inv_plan_reviews WHERE plan_id IS NOT NULL")
        self.absent(t["plans"], "plans", "SELECT plan_id FROM inv_plans WHERE plan_id IS NOT NULL")
        self.absent(t["service_suppliers"], "service_suppliers",
                    "SELECT service_id, supplier_id FROM inv_service_suppliers WHERE supplier_id IS NOT NULL")
        self.absent(t["suppliers"], "suppliers", "SELECT supplier_id FROM inv_suppliers WHERE supplier_id IS NOT NULL",
                    removable_sql="""NOT EXISTS (SELECT 1 FROM service_suppliers l WHERE l.supplier_id = s.supplier_id
                                     AND (l.service_id, l.supplier_id) NOT IN (
                                         SELECT (service_id, supplier_id) FROM inv_plan_service_suppliers
                                         WHERE action = 'delete'))
                                     AND NOT EXISTS (SELECT 1 FROM inv_plan_service_suppliers l
                                                     WHERE l.supplier_id = s.supplier_id AND l.action = 'insert')
                                     AND NOT EXISTS (SELECT 1 FROM assets a LEFT JOIN inv_plan_assets p
                                                     ON p.asset_id = a.asset_id AND p.action = 'update'
                                                     WHERE CASE WHEN p.has_supplier_id THEN p.supplier_id
                                                                ELSE a.supplier_id END = s.supplier_id)
                                     AND NOT EXISTS (SELECT 1 FROM inv_plan_assets p WHERE p.action = 'insert'
                                                     AND p.supplier_id = s.supplier_id)""",
                    kept_reason="services or assets still rely on them")
        self.absent(t["dependencies"], "dependencies",
                    "SELECT service_id, depends_on_id FROM inv_dependencies WHERE depends_on_id IS NOT NULL")
        self.absent(t["services"], "services", "SELECT service_id FROM inv_services WHERE service_id IS NOT NULL")
        self.absent(t["business_units"], "business_units", "SELECT unit_id FROM inv_business_units "
                    "WHERE unit_id IS NOT NULL",
                    removable_sql="""NOT EXISTS (
                        SELECT 1 FROM services v LEFT JOIN inv_plan_services p ON p.service_id = v.service_id
                        WHERE CASE WHEN p.has_unit_id AND p.action = 'update' THEN p.unit_id ELSE v.unit_id END
                              = s.unit_id)
                        AND NOT EXISTS (SELECT 1 FROM inv_plan_services p WHERE p.action = 'insert'
                                        AND p.unit_id = s.unit_id)
                        AND NOT EXISTS (
                        SELECT 1 FROM business_units v LEFT JOIN inv_plan_business_units p ON p.unit_id = v.unit_id
                        WHERE CASE WHEN p.has_parent_unit_id AND p.action = 'update' THEN p.parent_unit_id
                                   ELSE v.parent_unit_id END = s.unit_id AND v.unit_id <> s.unit_id)
                        AND NOT EXISTS (SELECT 1 FROM inv_plan_business_units p WHERE p.action = 'insert'
                                        AND p.parent_unit_id = s.unit_id)""",
                    kept_reason="services or units still belong to them")

    # -- reporting --------------------------------------------------------------------------------------

    def summary(self) -> PlanSummary:
        tables = {}
        for sheet in FIELD_COLUMNS:
            target = next(t for t in TARGETS if t.sheet == sheet and t.table != "service_aliases")
            counts = dict(self.sql(f"SELECT action, count(*) FROM inv_plan_{target.table} GROUP BY action"))
            unread = sum(source.rows for source in self.read.sources
                         if source.sheet.name == sheet and not source.usable)
            tables[sheet] = {
                "inserted": counts.get("insert", 0), "updated": counts.get("update", 0),
                "unchanged": counts.get("unchanged", 0), "retired": counts.get("retire", 0) + counts.get("delete", 0),
                "rejected": self.sql(f"SELECT count(*) FROM inv_{sheet} WHERE NOT ok")[0][0] + unread,
                "absent": counts.get("absent", 0) + counts.get("retire", 0) + counts.get("delete", 0)
                + counts.get("kept", 0),
            }
        # A service whose aliases alone changed is updated too.
        alias_updates = self.sql("""
            SELECT count(DISTINCT a.service_id) FROM inv_plan_service_aliases a
            WHERE a.action IN ('insert', 'update', 'delete')
              AND a.service_id IN (SELECT service_id FROM inv_plan_services WHERE action = 'unchanged')
        """)[0][0]
        tables["services"]["updated"] += alias_updates
        tables["services"]["unchanged"] -= alias_updates
        self.cycles()
        return PlanSummary(tables, self.changes(), self.absent_rows(), self.problems)

    def cycles(self) -> None:
        """Dependency cycles in the graph as the import leaves it: reported, and kept."""
        edges = self.sql("""
            SELECT service_id, depends_on_id FROM dependencies d
            WHERE NOT EXISTS (SELECT 1 FROM inv_plan_dependencies p WHERE p.action = 'delete'
                              AND p.service_id = d.service_id AND p.depends_on_id = d.depends_on_id)
            UNION SELECT service_id, depends_on_id FROM inv_plan_dependencies WHERE action = 'insert'
        """)
        for members in strongly_connected(edges):
            rows = self.sql("""
                SELECT min(src), min(row_no) FROM inv_plan_dependencies
                WHERE action IN ('insert', 'unchanged', 'update') AND list_contains($m, service_id)
                  AND list_contains($m, depends_on_id) AND src IS NOT NULL
            """, {"m": members})
            src, row_no = rows[0] if rows else (None, None)
            self.warn("dependencies", "dependency cycle (kept): " + " -> ".join([*members, members[0]]),
                      file=self.sources[src].file if src is not None else None, row=row_no)

    def changes(self) -> pd.DataFrame:
        parts = []
        for target in TARGETS:
            if target.table == "service_aliases":
                continue
            for column in target.data:
                parts.append(f"""
                    SELECT '{target.sheet}' AS sheet, {target.label} AS row_key, '{target.header(column)}' AS field,
                           CAST(p.old_{column} AS VARCHAR) AS old, CAST(p.{column} AS VARCHAR) AS new,
                           p.src, p.row_no
                    FROM inv_plan_{target.table} p
                    WHERE p.action IN ('update', 'retire') AND p.has_{column}
                      AND p.{column} IS DISTINCT FROM p.old_{column}""")
        parts.append("""
            SELECT 'services', service_id, 'aliases',
                   nullif(array_to_string(list(old_alias ORDER BY old_alias) FILTER (WHERE action <> 'insert'),
                                          '; '), ''),
                   nullif(array_to_string(list(alias ORDER BY alias) FILTER (WHERE action <> 'delete'), '; '), ''),
                   min(src), min(row_no)
            FROM inv_plan_service_aliases GROUP BY service_id
            HAVING bool_or(action IN ('insert', 'update', 'delete'))""")
        frame = self.cur.execute(" UNION ALL ".join(parts) + " ORDER BY sheet, row_key, field").df()
        return frame

    def absent_rows(self) -> pd.DataFrame:
        parts = [f"""SELECT '{target.sheet}' AS sheet, {target.label} AS row_key, p.action
                     FROM inv_plan_{target.table} p
                     WHERE p.src IS NULL AND p.action IN ('absent', 'retire', 'delete', 'kept')"""
                 for target in TARGETS if target.table != "service_aliases"]
        return self.cur.execute(" UNION ALL ".join(parts) + " ORDER BY sheet, row_key").df()


_STEPS = ("business_units", "services", "create_units", "service_units", "service_aliases", "service_index",
          "suppliers", "assets", "dependencies", "service_suppliers", "create_suppliers", "service_supplier_links",
          "asset_suppliers", "service_assets", "plans", "plan_reviews", "drills", "findings", "compare")
_SCRATCH = ["inv_stored_service_names", "inv_unit_names", "inv_supplier_names", "inv_aliases", "inv_alias_clashes",
            "inv_service_ids", "inv_service_names", "inv_plan_ids", "inv_drill_ids", "inv_repeats",
            "inv_asset_ids", "inv_asset_names", "inv_relationship_assets",
            *[f"inv_{sheet}" for sheet in FIELD_COLUMNS]]


def make_plan(cur, read: ReadResult, *, retire_missing: frozenset[str]) -> PlanSummary:
    """Resolve and compare every row read with the store, on `cur` (its temp tables hold the plan)."""
    cur.execute(KEY_MACRO)
    planner = _Planner(cur, read, retire_missing)
    for step in _STEPS:
        getattr(planner, step)()
    return planner.summary()


def saved_plan(cur) -> dict[str, pa.Table]:
    """The plan's tables, kept by a preview so that its commit need not plan again when nothing
    was committed in between."""
    return {target.table: cur.execute(f"SELECT * FROM inv_plan_{target.table}").fetch_arrow_table()
            for target in TARGETS}


def restore_plan(cur, tables: dict[str, pa.Table]) -> None:
    """The saved plan's tables under their names, as views over the Arrow tables: the commit only
    reads them, and copying 100,000 planned rows back into DuckDB cost more than the scans."""
    for name, table in tables.items():
        cur.register(f"inv_plan_{name}", table)


def drop_plan(cur) -> None:
    for name in [*_SCRATCH, *[f"inv_plan_{target.table}" for target in TARGETS]]:
        cur.unregister(name)   # a restored plan's view; nothing when it is a table
        # Named in the temp catalog: a name found nowhere else would be looked up in the store's
        # catalog too, which on a lake is a catalog transaction (1 ms CPU and a PostgreSQL round
        # trip each; most of these names were never made or are gone already).
        cur.execute(f"DROP TABLE IF EXISTS temp.main.{name}")
