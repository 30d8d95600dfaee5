# Orchestrator: `make run` serves the app; `make test` runs every test. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-runtime
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-runtime run serve test lint format bench browser-deps clean

# Two stamps: `make run` needs the runtime dependencies only; tests, lint and benchmarks the dev
# extras too (a superset, so a dev install also satisfies `run`).
$(STAMP): pyproject.toml
	@echo "Installing the app and its development tools into $(VENV) (log: $(VENV)/install.log)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -e '.[dev]' \
	  && $(BIN)/python -m pip install -q --no-deps 'instructor==1.17.0'; } \
	  >$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP) $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	@echo "Installing the app (runtime dependencies only) into $(VENV) (log: $(VENV)/install.log)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install -q --upgrade pip && $(BIN)/python -m pip install -q -e .; } \
	  >$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@touch $(RUN_STAMP)

install: $(STAMP)
install-runtime: $(RUN_STAMP)

# Installs, migrates, loads the defaults (first run only), makes an admin login, then serves under ASGI
# with an embedded Celery worker (filesystem broker: no Redis needed).
# Quiet by design: problems are printed, routine steps are one line each, and the last thing
# printed is one block with the URL and the login (scripts/serve).
run: install-runtime
	@echo "Preparing the database (SQLite in ./var unless DATABASE_URL is set)..."
	@$(BIN)/python manage.py migrate --noinput --skip-checks -v 0
	@$(BIN)/python manage.py import_config config/defaults.yaml --if-empty --brief
	@$(BIN)/python manage.py ensure_admin --quiet --handoff $${ORCHESTRATOR_VAR_DIR:-var}/first-login
	@HOST=$(HOST) PORT=$(PORT) BIN=$(BIN) scripts/serve

# Browser tests drive Debian's Chromium; install it when missing and we may (root).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium missing: browser tests will be skipped"; }

test: install browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
