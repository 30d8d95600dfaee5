# Orchestrator: `make run` serves the app; `make test` runs every test. See README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test lint format bench browser-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Installs, migrates, loads the defaults (first run only), makes an admin login, then serves under ASGI
# with an embedded Celery worker (filesystem broker: no Redis needed).
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_config config/defaults.yaml --if-empty --quiet-unchanged
	$(BIN)/python manage.py ensure_admin
	HOST=$(HOST) PORT=$(PORT) BIN=$(BIN) scripts/serve

# Browser tests drive Debian's Chromium; install it when missing and we may (root).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium missing: browser tests will be skipped"; }

test: install browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
