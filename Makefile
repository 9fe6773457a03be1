# The two commands of the README's quick start:
#   make run    install, materialize the latest partition end to end, serve the UI, the API, the app
#   make test   install, lint, check the package layers and the definitions, run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MA_DATA_DIR ?= $(CURDIR)/data
DAGSTER_PORT ?= 3000
API_PORT ?= 8000
APP_PORT ?= 8501

.PHONY: run test install lock manifest bootstrap serve lint bench clean

run: install bootstrap serve

test: install
	ruff check .
	ruff format --check .
	lint-imports
	dg check defs
	pytest -n 2 --dist loadgroup

install: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml manifest

# The dbt manifest that the analytics assets load (dbt parse into dbt_project/target/, which is not
# committed), so `dg check defs`, `make run` and a deployment find it on a fresh clone.
manifest: $(VENV)/.installed
	dagster-dbt project prepare-and-package --file ma_pipeline/analytics/project.py

# uv installs the locked versions in seconds; pip installs the same lock where uv cannot be had.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	if $(BIN)/python -m pip install --quiet uv; then \
	  $(BIN)/uv pip sync --quiet requirements.lock && $(BIN)/uv pip install --quiet --no-deps -e .; \
	else \
	  $(BIN)/python -m pip install --quiet -r requirements.lock && \
	  $(BIN)/python -m pip install --quiet --no-deps -e .; \
	fi
	touch $@

# requirements.lock: every package pinned, resolved from pyproject.toml within constraints.txt.
lock:
	uv pip compile --quiet --custom-compile-command "make lock" pyproject.toml --extra dev \
	  -c constraints.txt -o requirements.lock

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.local.yaml $@

bootstrap:
	python -m ma_pipeline.bootstrap

# The Dagster UI (webserver and daemon), the API and the web app, their logs under
# $(MA_DATA_DIR)/logs/; one Ctrl-C stops them all.
serve:
	python -m ma_pipeline.serve --dagster-port $(DAGSTER_PORT) --api-port $(API_PORT) \
	  --app-port $(APP_PORT)

# Every benchmark; each prints its figures beside a floor measured in the same process.
bench: install
	python bench/bench_warehouse.py
	python -m bench.bench_ingestion
	python bench/bench_enrichment.py
	python bench/bench_features.py
	python bench/bench_scoring.py
	python -m bench.bench_enrichment_days
	python bench/bench_storage_days.py
	python bench/bench_api.py
	python -m bench.bench_lookup_index
	python -m bench.bench_backfill

clean:
	rm -rf $(MA_DATA_DIR) $(DAGSTER_HOME)
