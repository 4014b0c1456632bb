# voterpipe: `make demo` and `make test` are the only commands a newcomer needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
STATE  ?= nc
SNAPSHOT ?= 2026-11-01
DATA_ROOT ?= data
export VOTERPIPE_DATA_ROOT ?= $(DATA_ROOT)

.PHONY: help install demo demo-all test bench bench-e2e luigid luigid-stop cron-run run query clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install voterpipe (editable) with dev extras

demo: $(STAMP) ## synthesise a drop for every shipped format and run the whole pipeline on it
	$(PY) -m voterpipe.demo --data-root $(VOTERPIPE_DATA_ROOT)

DEMO_ALL_VOTERS ?= 500
demo-all: $(STAMP) ## like demo, with one small drop of every layout in config/formats/ (DEMO_ALL_VOTERS)
	$(PY) -m voterpipe.demo --all --voters $(DEMO_ALL_VOTERS) --data-root $(VOTERPIPE_DATA_ROOT)

test: $(STAMP) ## run the test suite (starts a throwaway PostgreSQL when needed)
	$(PY) -m pytest

bench: $(STAMP) ## run the benchmarks; numbers land in bench/results/
	$(PY) -m bench.run

bench-e2e: $(STAMP) ## the whole pipeline at 100k and 1M voters (BENCH_FULL=1: 4M) against bench/naive.py
	$(PY) -m bench.run bench_e2e

LUIGID_PORT ?= 8082
VAR_DIR     ?= $(CURDIR)/var
LUIGID_DIR  := $(VAR_DIR)/luigid

luigid: $(STAMP) ## start luigid in the background on 127.0.0.1:$(LUIGID_PORT) (state, log, pid under var/)
	@mkdir -p $(LUIGID_DIR) $(VAR_DIR)/log
	LUIGI_CONFIG_PATH=$(CURDIR)/config/cron/luigid.cfg $(VENV)/bin/luigid --background --address 127.0.0.1 \
	  --port $(LUIGID_PORT) --pidfile $(LUIGID_DIR)/luigid.pid --logdir $(VAR_DIR)/log \
	  --state-path $(LUIGID_DIR)/state.pickle
	@sleep 1; test -s $(LUIGID_DIR)/luigid.pid && echo "luigid pid $$(cat $(LUIGID_DIR)/luigid.pid): \
	http://127.0.0.1:$(LUIGID_PORT)/static/visualiser/index.html, metrics at /metrics, log $(VAR_DIR)/log/luigi-server.log"

luigid-stop: ## stop the luigid that `make luigid` started (by its pid file; it saves its state)
	@test -s $(LUIGID_DIR)/luigid.pid || { echo "no $(LUIGID_DIR)/luigid.pid: luigid is not running from here"; exit 1; }
	kill $$(cat $(LUIGID_DIR)/luigid.pid) && rm -f $(LUIGID_DIR)/luigid.pid

cron-run: $(STAMP) ## what cron runs: every complete, unpublished drop of the [cron] states, oldest first
	$(VENV)/bin/voterpipe cron

run: $(STAMP) ## run the whole pipeline for STATE= SNAPSHOT= against a running luigid
	$(VENV)/bin/luigi --module voterpipe.tasks EnrichSnapshot --state $(STATE) --snapshot $(SNAPSHOT)

clean: ## remove the virtualenv and the demo data root
	rm -rf $(VENV) data

query: $(STAMP) ## example query on the demo's DuckDB warehouse: NC turnout by age band
	$(PY) -c "import duckdb, os; c = duckdb.connect(os.path.join('$(VOTERPIPE_DATA_ROOT)', 'warehouse.duckdb'), read_only=True); \
	c.sql(\"SELECT election_date, cohort AS age_band, registered, voted, round(100 * turnout, 1) AS turnout_pct \
	FROM current_cohort_turnout WHERE state = 'nc' AND dimension = 'age_band_default' AND geography_level = 'state' \
	AND election_type = 'general' ORDER BY election_date DESC, cohort LIMIT 16\").show()"
