# The one task runner: README commands and CI call these targets as they are.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast check install install-test lint format bench clean

# Install touchpoints and run the demo: simulated data loaded over HTTP, server on :8080.
demo: install
	$(BIN)/touchpoints demo

# Install the test dependencies, run the checks and the whole suite on every core (pytest
# exits non-zero on no tests). Spark tests share one worker (one JVM); a module's browser or
# demo server stays on one worker (see tests/conftest.py).
test: install-test check
	$(BIN)/pytest -n auto --dist loadgroup

# The inner loop: the checks and the tests that need no Spark session, server process or
# browser and are not marked slow (under a minute).
test-fast: install-test check
	$(BIN)/pytest -n auto -m "not spark and not e2e and not slow" -q

# Style, complexity (C90), types, and the layers' import contract (docs/architecture.md).
check: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	@# The journey analytics tests also run on a local Spark session, which needs Java 17+.
	@command -v java >/dev/null 2>&1 || { \
		echo "installing Java for the Spark tests (openjdk-17-jre-headless)"; \
		apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
	@# The dashboard tests drive Debian's chromium (Playwright's own browser download is not used).
	@test -x /usr/bin/chromium || { \
		echo "installing chromium for the dashboard tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	touch $@

lint:
	$(BIN)/ruff check src tests benchmarks

format:
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/normalize.py
	$(BIN)/python benchmarks/identity.py
	$(BIN)/python benchmarks/identity_matching.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
