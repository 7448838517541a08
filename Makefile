# The one task runner: README commands and CI call these targets as they are.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-test lint format bench clean

# Install touchpoints and run the demo: simulated data loaded over HTTP, server on :8080.
demo: install
	$(BIN)/touchpoints demo

# Install the test dependencies and run the whole suite (pytest exits non-zero on no tests).
test: install-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/pytest

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
