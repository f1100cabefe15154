# The two set-up commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint migrate demo worker beat e2e benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py sync_roles

# Loads the demo data once (it does nothing when profiles exist), then serves the UI.
run: migrate
	$(BIN)/python manage.py seed_demo --if-empty
	$(BIN)/python manage.py seed_segments
	$(BIN)/python manage.py insights --run --if-never
	$(BIN)/python manage.py demo_users
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# SQLite and eager tasks unless DATABASE_URL and CELERY_BROKER_URL are set.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

demo: migrate
	$(BIN)/python manage.py seed_demo

worker: $(VENV)/.installed
	$(BIN)/celery -A cdp worker -l info -Q ingestion,identity,segments,activation,default

beat: $(VENV)/.installed
	$(BIN)/celery -A cdp beat -l info

clean:
	rm -rf $(VENV) var/static
