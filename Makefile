# The commands a newcomer types. `make run` needs nothing but Python 3.11; `make test` also needs
# RabbitMQ, PostgreSQL and Redis, which `make services` installs (Debian) or starts when they are stopped.
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  ?= python3
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install bench-install run run-distributed services browser tools test test-browser test-faults test-unit test-integration test-e2e bench clean

install: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

run: install          ## all services in one process: kombu in-memory, SQLite under ./var, HTTP on 127.0.0.1:8000 (its URL printed once ready)
	$(BIN)/mawaeed run

run-distributed: install services   ## one process per service on RabbitMQ + PostgreSQL, gateway on :8000
	deploy/run-distributed.sh

services:             ## RabbitMQ (with management), PostgreSQL and Redis answering
	deploy/ensure-services.sh

browser:              ## Debian's Chromium and axe-core, for the tests of the pages in a real browser
	deploy/ensure-browser.sh

tools:                ## promtool (Debian's prometheus package), for the checks of deploy/observability/
	deploy/ensure-tools.sh

# The pages in a browser run in a second pytest process after the others (side by side on two cores they would
# slow the timing-sensitive end-to-end tests), the faults in a third (they start their own RabbitMQ node and
# PostgreSQL cluster, and load the machine); all three always run, and any failing fails `make test`.
# Under `make test` the observability checks need promtool (tools): missing, they fail rather than skip.
test: export MAWAEED_REQUIRE_TOOLS = 1
test: install services browser tools   ## every test: unit, contract, integration, end-to-end, the pages in a browser, faults
	@rc=0; $(BIN)/pytest -q --ignore=tests/browser --ignore=tests/faults || rc=$$?; \
	$(BIN)/pytest -q tests/browser || rc=$$?; $(BIN)/pytest -q tests/faults || rc=$$?; exit $$rc

test-browser: install services browser   ## the pages in Chromium; MAWAEED_SCREENSHOTS=docs/screenshots keeps the best shots
	$(BIN)/pytest -q tests/browser

test-faults: install services   ## faults under load (broker down, database restart, kills, backlog, redelivery) on their own RabbitMQ and PostgreSQL
	$(BIN)/pytest -q tests/faults

bench-install: install
	$(BIN)/pip install --quiet -e '.[test,bench]'

bench: bench-install services   ## the suite's speed beside raw PostgreSQL and RabbitMQ; results in bench/results/
	$(BIN)/python -m bench $(BENCH_ARGS)

test-unit: install
	$(BIN)/pytest -q tests/unit

clean:
	rm -rf $(VENV) var .pytest_cache
