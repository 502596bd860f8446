# Keel: `make up` starts the embedded stack, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHROMIUM := /usr/bin/chromium

.PHONY: up test lint bench histories clean

# The example tool package is installed too: the tests show its tools being discovered.
$(BIN)/keel: pyproject.toml examples/keel-example-tools/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e examples/keel-example-tools
	touch $(BIN)/keel

up: $(BIN)/keel
	$(BIN)/keel up

lint: $(BIN)/keel
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Three processes, a test module each at a time: most tests wait on real servers, not the CPU.
test: lint $(CHROMIUM)
	$(BIN)/pytest -n 3 --dist loadfile

# The review page's test drives Debian's Chromium headless; CI runs as root on Debian.
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

bench: $(BIN)/keel
	$(BIN)/python -m bench

histories: $(BIN)/keel
	KEEL_RECORD_HISTORIES=1 $(BIN)/pytest tests/test_replay.py

clean:
	rm -rf $(VENV) .keel .pytest_cache .ruff_cache *.egg-info
