# voterpipe: `make demo` and `make test` are the only commands a newcomer needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STATE  ?= nc
SNAPSHOT ?= 2026-11-01
DATA_ROOT ?= data
export VOTERPIPE_DATA_ROOT ?= $(DATA_ROOT)

.PHONY: help install demo test bench luigid run query clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install voterpipe (editable) with dev extras

demo: $(STAMP) ## synthesise a drop for every shipped format and run the whole pipeline on it
	$(PY) -m voterpipe.demo --data-root $(VOTERPIPE_DATA_ROOT)

test: $(STAMP) ## run the test suite (starts a throwaway PostgreSQL when needed)
	$(PY) -m pytest

bench: $(STAMP) ## run the benchmarks; numbers land in bench/results/
	$(PY) -m bench.run

luigid: $(STAMP) ## start the Luigi central scheduler on :8082 (visualiser at /static/visualiser/)
	$(VENV)/bin/luigid --port 8082 --state-path $(VOTERPIPE_DATA_ROOT)/luigi-state.pickle

run: $(STAMP) ## run the whole pipeline for STATE= SNAPSHOT= against a running luigid
	$(VENV)/bin/luigi --module voterpipe.tasks EnrichSnapshot --state $(STATE) --snapshot $(SNAPSHOT)

clean: ## remove the virtualenv and the demo data root
	rm -rf $(VENV) data

query: $(STAMP) ## example query on the demo's DuckDB warehouse: NC turnout by age band
	$(PY) -c "import duckdb, os; c = duckdb.connect(os.path.join('$(VOTERPIPE_DATA_ROOT)', 'warehouse.duckdb'), read_only=True); \
	c.sql(\"SELECT election_date, cohort AS age_band, registered, voted, round(100 * turnout, 1) AS turnout_pct \
	FROM current_cohort_turnout WHERE state = 'nc' AND dimension = 'age_band_default' AND geography_level = 'state' \
	AND election_type = 'general' ORDER BY election_date DESC, cohort LIMIT 16\").show()"
