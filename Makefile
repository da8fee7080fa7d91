# The two set-up commands of the README are `make demo` and `make test`; each runs `setup`
# first when the environment is missing or older than the project files. `setup` only builds
# .venv: it never touches the system (no apt-get, no sudo). Chromium for the browser tests is
# the system's if there is one; CI installs it in .ci/run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed
TORCH  := torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast bench lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || { \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	    echo "make setup: $(PYTHON) is older than Python 3.11, which the pinned versions need (make PYTHON=python3.11)" >&2; exit 1; }; \
	  $(PYTHON) -m venv $(VENV); }
	$(PIP) install --upgrade --quiet pip
	$(PIP) install --quiet $(TORCH)
	$(PIP) install --quiet -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/python scripts/demo.py

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/run_all.py

lint: setup
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: setup
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache demo-output
