# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# setuptools' notices that --quiet does not silence: the generic editable-install caution, and one per
# config folder (configs/ ships as package data of robustml.configs, not as packages).
SETUPTOOLS_NOTICES := ignore:Editable installation,ignore:Package 'robustml.configs.

.PHONY: setup demo test test-slow bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="$(SETUPTOOLS_NOTICES)" $(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,slurm,trackers,optuna,text,text-offline]"
	touch $@

demo: setup
	@$(BIN)/robustml-train

# One test process per core (pytest-xdist; at most 4: each holds torch and the data in memory).
test: setup
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4

test-slow: setup
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 -m slow
