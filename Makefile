# The two commands that set up everything on a fresh machine:
#   make up               deploy the local stack on this machine with the real engine
#                         (STACK=dev|staging|prod deploys to a cluster instead)
#   make test             lint, type-check and run every test (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK ?= local
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-installed
FLYWAY_VERSION = $(shell $(PY) -m components.settings flyway-version)
DIR ?= database/migrations

.PHONY: help deps test-deps check test up preview logs destroy down lint format typecheck \
        config-reference migrations-lint migrations-check migrations-new migrations-lock \
        migrations-unlock migrations-relock migrations-adopt migrations-repair restore \
        migrations-rehearse migrations-list bench bench-engine corpus drift unprotect

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

$(DEPS_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

deps: $(DEPS_STAMP) ## Create .venv and install pinned dependencies

test-deps: deps ## Install what the tests need (apt packages, Flyway, actionlint, the engine)
	bash scripts/install-system-deps.sh
	bash scripts/fetch-flyway.sh $(FLYWAY_VERSION)
	bash scripts/install-actionlint.sh
	bash scripts/install-engine.sh all

lint: deps ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: deps ## Apply ruff formatting and fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: deps ## mypy --strict
	$(VENV)/bin/mypy

test: test-deps lint typecheck migrations-check ## Everything CI runs: lint, types, migrations, all tests
	$(VENV)/bin/pytest

up: ## Deploy STACK (default local: this machine) with the real engine; prints Flyway's log. REFRESH=1: read the cluster first, put back what was changed by hand
	bash scripts/pulumi.sh up $(STACK) $(if $(REFRESH),--refresh)

preview: ## Show what `make up` would change for STACK, with the diff (REFRESH=1: after reading the cluster)
	bash scripts/pulumi.sh preview $(STACK) $(if $(REFRESH),--refresh)

logs: ## Print Flyway's log of the last migration Job of STACK
	bash scripts/pulumi.sh logs $(STACK)

destroy: ## Delete what the program deployed for STACK (the database of record is kept)
	bash scripts/pulumi.sh destroy $(STACK)

down: ## Stop and remove the local stacks' cluster (local, local-cnpg), databases and state
	bash scripts/pulumi.sh down local

config-reference: deps ## Regenerate the README's configuration reference from components/settings/keys.py
	$(PY) -m components.settings write-reference README.md

migrations-repair: ## After a failed migration: flyway repair in the migration Job's pod of STACK
	bash scripts/pulumi.sh repair $(STACK)

restore: ## Restore a dump of STACK taken before a migration (BACKUP=name; default: the newest)
	RESTORE_BACKUP="$(BACKUP)" bash scripts/pulumi.sh restore $(STACK)

unprotect: ## Release the protection of what STACK deployed, for a deliberate replacement of the database (asks first)
	bash scripts/pulumi.sh unprotect $(STACK)

drift: deps ## Has STACK's cluster, Flyway history or live schema moved away from its last deploy? Report in .pulumi-state/logs/
	bash scripts/install-system-deps.sh
	bash scripts/fetch-flyway.sh $(FLYWAY_VERSION)
	bash scripts/pulumi.sh drift $(STACK)

migrations-lint: deps ## Check the migrations (naming, lock, squawk); DIR=database/migrations
	$(PY) -m deploy.lint $(DIR)

migrations-check: deps ## migrations-lint, and every migration released (in the lock): what CI runs
	$(PY) -m deploy.lint $(DIR) --released

migrations-new: deps ## Create the next versioned migration: make migrations-new DESC="add fills"
	@test -n "$(DESC)" || { echo 'usage: make migrations-new DESC="what it does"'; exit 2; }
	$(PY) -m components.migrations new "$(DESC)" --dir $(DIR)

migrations-lock: deps ## Release new migrations: lint them (squawk included), then lock them
	$(PY) -m deploy.lint $(DIR)
	$(PY) -m components.migrations lock $(DIR)

migrations-unlock: deps ## Reopen the newest release no database applied: make migrations-unlock FILE=V5__x.sql
	@test -n "$(FILE)" || { echo 'usage: make migrations-unlock FILE=V5__x.sql'; exit 2; }
	$(PY) -m components.migrations unlock "$(FILE)" --dir $(DIR)

migrations-relock: deps ## Release a migration again, put back to what a database applied: FILE=V5__x.sql
	@test -n "$(FILE)" || { echo 'usage: make migrations-relock FILE=V5__x.sql'; exit 2; }
	$(PY) -m components.migrations relock "$(FILE)" --dir $(DIR)

migrations-adopt: deps ## Adopt a database built without this program: STACK=, and BASELINE=<version> or HISTORY=flyway
	$(PY) -m deploy.adopt $(STACK) --dir $(DIR)$(if $(BASELINE), --baseline $(BASELINE))$(if $(HISTORY), --history)

migrations-rehearse: deps ## Apply DIR to a throwaway PostgreSQL with real Flyway and STACK's settings
	bash scripts/install-system-deps.sh
	bash scripts/fetch-flyway.sh $(FLYWAY_VERSION)
	$(PY) -m deploy.rehearse --stack $(STACK) --dir $(DIR)

migrations-list: deps ## List migrations with versions and checksums
	$(PY) -m components.migrations list $(DIR)

corpus: test-deps ## Run every bad input of tests/corpus through `make preview` and the real engine
	$(PY) -m tests.corpus --engine

bench: deps ## Measure how a preview scales with the migration history
	$(PY) benchmarks/preview_scaling.py

bench-engine: test-deps ## Measure the real engine's no-op preview and up at 10 to 5,000 files
	$(PY) benchmarks/engine_noop.py
