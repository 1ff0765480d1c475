# The README's commands. `make run` serves on http://127.0.0.1:8000; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Pinned, hash-checked installs: the runtime lock (the Docker image) and runtime + dev (make, CI).
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
# One lock for every platform and Python the project supports. Versions already in a lock are
# kept unless LOCK_FLAGS says otherwise: `make lock LOCK_FLAGS=--upgrade` (everything) or
# `make lock LOCK_FLAGS='--upgrade-package fastapi'`.
LOCK_FLAGS ?=
UV := $(VENV)/bin/uv
UV_COMPILE := $(UV) pip compile pyproject.toml --quiet --universal --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_FLAGS)
# The default test database server; `make test` also runs the suite there when it is reachable.
TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install lock run migrate demo test test-sqlite test-postgres lint

# A fresh environment with exactly the dev lock, then this project on top of it (editable).
$(VENV)/.installed: pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# uv comes from the dev lock. `make lock` uses the one in $(VENV) even when that environment is
# out of date (e.g. pyproject.toml just gained a dependency): no reinstall before relocking.
$(UV):
	$(MAKE) install

# Regenerates both locks from pyproject.toml with uv. The runtime lock is constrained by the dev
# lock, so the two agree on every version they share. An unchanged lock keeps its timestamp, so
# that `make install` does not reinstall for nothing.
lock: $(UV)
	@set -e; saved=$$(mktemp -d); trap 'rm -rf "$$saved"' EXIT; \
	for lock in $(DEV_LOCK) $(LOCK); do if [ -e $$lock ]; then cp -p $$lock "$$saved/"; fi; done; \
	$(UV_COMPILE) --extra dev --output-file $(DEV_LOCK); \
	$(UV_COMPILE) --constraint $(DEV_LOCK) --output-file $(LOCK); \
	for lock in $(DEV_LOCK) $(LOCK); do \
		if cmp -s $$lock "$$saved/$$lock"; then touch -r "$$saved/$$lock" $$lock; echo "$$lock: unchanged"; \
		else echo "$$lock: updated"; fi; \
	done

migrate: install
	$(VENV)/bin/releaselog migrate

run: install
	$(VENV)/bin/releaselog serve

# Migrates, then loads the demo coach and clients (api/services/demo.py); a second run changes nothing.
demo: install
	$(VENV)/bin/releaselog demo

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
