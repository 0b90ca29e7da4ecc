# hearing-server — the everyday commands. `make run` serves, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test test-fast check bench install system-deps clean

$(VENV)/.installed: pyproject.toml setup.py media/_sender.c
	scripts/system-deps.sh base
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m hearing_server serve

test: install
	scripts/system-deps.sh test
	scripts/run-tests.sh $(PYTEST_ARGS)

test-fast: install
	scripts/run-tests.sh -m "not slow" $(PYTEST_ARGS)

check: install
	$(VENV)/bin/ruff check hearing_server signaling media media_worker recording archive web_client tests benchmarks
	$(VENV)/bin/ruff format --check hearing_server signaling media media_worker recording archive web_client tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
