# The two commands of the README's quick start:
#   make run    install, materialize the latest partition end to end, serve the Dagster UI
#   make test   install, lint, check the definitions, run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MA_DATA_DIR ?= $(CURDIR)/data
DAGSTER_PORT ?= 3000

.PHONY: run test install bootstrap serve lint bench clean

run: install bootstrap serve

test: install
	ruff check .
	ruff format --check .
	dg check defs
	pytest -n 2

install: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

$(VENV)/.installed: pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.local.yaml $@

bootstrap:
	python -m ma_pipeline.bootstrap

serve:
	dagster dev -w workspace.yaml --port $(DAGSTER_PORT)

bench: install
	python bench/bench_warehouse.py

clean:
	rm -rf $(MA_DATA_DIR) $(DAGSTER_HOME)
