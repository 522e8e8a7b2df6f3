# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `make run PORT=8080`: the server, the banner and the links in e-mails all follow it.
PORT ?= 8000

.PHONY: run test lint format messages clean

run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	STATIC_COLLECTED=1 $(BIN)/python manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  BCP Portal: http://127.0.0.1:$(PORT)/   (Ctrl-C stops web, worker and beat)"
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" STATIC_COLLECTED=1 \
		PORTAL_BASE_URL="$${PORTAL_BASE_URL:-http://127.0.0.1:$(PORT)}" \
		$(BIN)/honcho start -f Procfile.dev -p $(PORT)

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Refresh the catalogue after changing strings; the compiled .mo is committed so a
# fresh machine needs no gettext.
messages: $(VENV)/.dev
	$(BIN)/python manage.py makemessages -l ja --no-obsolete --add-location file
	$(BIN)/python manage.py compilemessages -l ja --ignore .venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

clean:
	rm -rf $(VENV) var staticfiles
