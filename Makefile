# The two commands of the README: `make run` and `make test`. Everything is installed from this
# repository's own files into .venv, so a fresh machine needs only Python 3.11 and make.

PYTHON_BIN ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STORE ?= $(or $(ITSCM_STORE),data/itscm.duckdb)
PORT ?= 8501

.PHONY: run test lint browser postgres demo bench clean-store

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

DEMO_STORE := data/itscm.duckdb

# A store on DuckLake (STORE=ducklake:postgres:<connection string>) is no file for make to build:
# its colons and spaces would read as rule syntax. `init` makes it (in ITSCM_DATA_PATH) or
# upgrades it in place before each run instead; the shell gets its name quoted.
STORE_FILE := $(if $(filter ducklake:%,$(firstword $(STORE))),,$(STORE))

# On first run the default store is built as the demo organisation from the generator's sources
# (never committed); any other path that does not exist yet becomes an empty store, for your own
# organisation's inventory (`make run STORE=mine.duckdb`).
ifneq ($(STORE_FILE),)
$(STORE_FILE): | $(VENV)/.installed
	$(PY) -m itscm $(if $(filter $(DEMO_STORE),$(STORE)),demo,init) --store $(STORE)
endif

run: $(VENV)/.installed $(STORE_FILE)
	$(if $(STORE_FILE),,$(PY) -m itscm init --store '$(STORE)')
	ITSCM_STORE='$(STORE)' $(VENV)/bin/streamlit run app.py --server.port $(PORT)

# The demo organisation at STORE, whatever its path, unless a store is there already (a lake: the
# demo refuses one that holds services).
demo: | $(VENV)/.installed
	$(if $(STORE_FILE),test -e $(STORE) || )$(PY) -m itscm demo --store '$(STORE)'

# Browser tests drive Debian's Chromium, which also prints the report as PDF (in Liberation Sans);
# the PDF tests read it back with poppler's pdftotext. Install them where missing (root, as on CI).
browser:
	@test -x /usr/bin/chromium && test -x /usr/bin/pdftotext && test -d /usr/share/fonts/truetype/liberation || { \
	  echo "Installing Debian's chromium, poppler-utils and fonts-liberation for the browser and report tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium poppler-utils fonts-liberation >/dev/null; }

# The DuckLake tests run the store on a private PostgreSQL 15 (itscm/private_postgres.py), made from
# Debian's packages, installed where missing (root, as on CI).
PG_BIN := /usr/lib/postgresql/15/bin
postgres:
	@test -x $(PG_BIN)/initdb || { \
	  echo "Installing Debian's postgresql-15 for the DuckLake tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null; }

# Run a second time on DuckLake (README, "Tests"): files whose stores all come through the backend
# choice (tests/backends.py), and the tests of many processes writing one lake at once (and killed
# while they do). Tests marked no_store (they open none) are left out by themselves, file_only ones
# skip; files whose tests all open no store are not listed. Left out: tests/test_bench.py, whose
# benchmarks make their own stores whatever the backend (the lake's bench its own catalog).
DUCKLAKE_TESTS := tests/test_store.py tests/test_uniqueness.py tests/test_migrate_store.py \
	tests/test_ingest.py tests/test_ingest_cli.py tests/test_upload_cli.py tests/test_ingest_commit.py \
	tests/test_incident_columns.py tests/test_crash.py tests/test_inventory_crash.py \
	tests/test_coverage.py tests/test_attainment.py tests/test_downtime.py tests/test_staleness.py \
	tests/test_posture.py tests/test_measure_registry.py tests/test_rollup.py tests/test_consistency.py \
	tests/test_reliability.py tests/test_inventory.py tests/test_change_days.py tests/test_changed_since_review.py \
	tests/test_records.py tests/test_record_forms.py tests/test_administration.py tests/test_access.py \
	tests/test_writes_are_checked.py tests/test_inventory_import.py tests/test_inventory_assets.py \
	tests/test_inventory_formats.py tests/test_inventory_hostile.py tests/test_inventory_workbook.py \
	tests/test_inventory_currency.py tests/test_resilience.py tests/test_cli.py tests/test_continuity_events.py \
	tests/test_many_processes.py tests/test_lake_crash.py tests/test_filters.py \
	tests/test_pages.py tests/test_backup.py tests/test_change_import.py tests/test_upload_page.py \
	tests/test_inventory_page.py tests/test_changes_page.py tests/test_resilience_page.py tests/test_report_page.py \
	tests/test_report.py tests/test_remind.py tests/test_hostile_input.py tests/test_demo.py \
	tests/test_resilience_demo.py tests/test_ingest_properties.py tests/test_ingest_scale.py tests/browser \
	tests/test_bench_writers.py tests/test_lake_files.py tests/test_run_data_version.py \
	tests/test_one_snapshot.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The suite on TEST_WORKERS processes (pytest-xdist); the browser tests keep to one of them, in
# turn, so Chromium and its servers never compete with each other for the cores.
TEST_WORKERS ?= 2

test: $(VENV)/.installed browser postgres lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --backend ducklake $(DUCKLAKE_TESTS)
