# Two commands on a fresh machine: `make repro` and `make test`. Each creates .venv if missing and
# installs the project with the versions pinned in requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install test lint repro repro-paper smoke-paper bench readme-results clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test,postgres]"
	touch $(STAMP)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

# dvc repro, its output kept in reports/repro_wallclock.log and its time, per stage and per part
# of the study, in reports/repro_wallclock.json (mlgle.pipeline.wallclock).
repro: install
	$(BIN)/python -m mlgle.pipeline.wallclock --out reports/repro_wallclock.json -- dvc repro

# The paper's sizes as one DVC experiment: params/paper.yaml as `dvc exp run -S` overrides
# (mlgle.profile). EXP_ARGS go to dvc exp run, e.g. EXP_ARGS="--name paper" or "--queue".
repro-paper: install
	$(BIN)/python -m mlgle.profile params/paper.yaml $(EXP_ARGS)

# The paper profile's structure at tiny sizes (params/paper_smoke.yaml) through the same path, as
# a DVC experiment in a temporary copy (dvc exp run --temp).
smoke-paper: install
	$(BIN)/python -m mlgle.profile params/paper_smoke.yaml --temp $(EXP_ARGS)
	$(BIN)/dvc exp show --md --no-pager --only-changed --drop 'Created|State|Executor'

bench: install
	$(BIN)/python -m benchmarks --out reports

.PHONY: bench-e2e
bench-e2e: install
	$(BIN)/python -m benchmarks.end_to_end --out reports

readme-results: install
	$(BIN)/python -m mlgle.pipeline.readme

clean-venv:
	rm -rf $(VENV)
