# The README's commands. `make run` serves on http://127.0.0.1:8000; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The default test database server; `make test` also runs the suite there when it is reachable.
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install run migrate test test-sqlite test-postgres lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(VENV)/bin/releaselog migrate

run: install
	$(VENV)/bin/releaselog serve

test: install lint test-sqlite test-postgres

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# TEST_DATABASE_URL is emptied so that an exported PostgreSQL URL cannot turn this run into a
# second PostgreSQL run.
test-sqlite: install
	TEST_DATABASE_URL= $(PY) -m pytest

# Runs when PostgreSQL answers; with CI=true an unreachable server is a failure.
test-postgres: install
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(TEST_POSTGRES_URL)'.replace('+psycopg',''), connect_timeout=3).close()" 2>/dev/null; then \
		TEST_DATABASE_URL='$(TEST_POSTGRES_URL)' $(PY) -m pytest; \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "PostgreSQL at $(TEST_POSTGRES_URL) is not reachable" >&2; exit 1; \
	else \
		echo "PostgreSQL not reachable: skipped the PostgreSQL run"; \
	fi
