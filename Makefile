# The two commands of the README's Quick start: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_USER ?= demo-admin
DEMO_PASSWORD ?= demo-portal-2004

.PHONY: run test smoke lint bench venv dev-venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

venv: $(VENV)/.installed
dev-venv: $(VENV)/.dev-installed

# Serves the portal with demo data on http://127.0.0.1:8000 (SQLite, tasks in-process).
run: export DJANGO_DEBUG ?= 1
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --scale small --if-empty
	PORTAL_PASSWORD='$(DEMO_PASSWORD)' $(BIN)/python manage.py add_user $(DEMO_USER) --role admin
	@echo ""
	@echo "  TS CAL license portal: http://$(HOST):$(PORT)/"
	@echo "  Log in as $(DEMO_USER) / $(DEMO_PASSWORD)"
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: dev-venv
	$(BIN)/ruff check .

# SQLite unless DATABASE_URL is set (then PostgreSQL, with its row-lock and trigger tests).
test: dev-venv lint
	$(BIN)/python -m pytest

# The README's production section for real: a fresh venv from requirements.txt only,
# PostgreSQL, gunicorn, one Celery worker and beat on Redis, a background export end to end.
smoke:
	$(PYTHON) scripts/smoke.py

bench: dev-venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles exports
