# Keel: `make up` starts the embedded stack, `make test` runs the whole suite, `make test-fast`
# its unit tier.
# Both install exactly what `uv.lock` pins: `make up` the runtime, `make test` the dev tools too.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := .uv/bin/uv
CHROMIUM := /usr/bin/chromium
# uv uses the interpreter it is given and never downloads one.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: up test test-fast lint bench histories lock clean

# uv itself, hash-pinned, in a venv of its own.
$(UV): deploy/uv-requirements.txt
	test -x .uv/bin/python || $(PYTHON) -m venv .uv
	.uv/bin/python -m pip install --quiet --require-hashes --no-deps -r deploy/uv-requirements.txt
	touch $(UV)

# The runtime alone; `--inexact` keeps the dev tools of a `make test` that came before.
$(VENV)/.runtime: $(UV) uv.lock pyproject.toml
	$(UV) sync --quiet --frozen --no-dev --inexact
	touch $@

# The runtime and the dev group, exactly as locked.
$(VENV)/.dev: $(UV) uv.lock pyproject.toml examples/keel-example-tools/pyproject.toml
	$(UV) sync --quiet --frozen
	touch $@ $(VENV)/.runtime

up: $(VENV)/.runtime
	$(BIN)/keel up

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/pyright

# The unit tier first, in this process: it fails in seconds. Then the tiers on real servers in
# three processes, a test module each at a time (most of them wait on servers, not the CPU),
# the system tier's long modules first so that the short ones fill the end.
test: lint $(CHROMIUM)
	$(BIN)/pytest tests/unit
	$(BIN)/pytest -n 3 --dist loadfile tests/system tests/workflows

# The unit tier alone: no server, no process.
test-fast: $(VENV)/.dev
	$(BIN)/pytest tests/unit

# The review page's test drives Debian's Chromium headless; CI runs as root on Debian.
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

bench: $(VENV)/.dev
	$(BIN)/python -m bench

histories: $(VENV)/.dev
	KEEL_RECORD_HISTORIES=1 $(BIN)/pytest tests/system/test_replay.py

# Update the lock on purpose: newest versions within pyproject.toml's ranges.
lock: $(UV)
	$(UV) lock --upgrade

clean:
	rm -rf $(VENV) .uv .keel .pytest_cache .ruff_cache *.egg-info
