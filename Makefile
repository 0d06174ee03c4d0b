# Two commands: `make run` (the product, embedded default) and `make test` (everything).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint install migrate seed fuzz fuzz-conformance bench-tickets bench-nudges bench-reports chaos clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q -c constraints.txt ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import django, celery, rest_framework, pytest" # fail here if the install did not
	touch $@

install: $(VENV)/.installed

# The product on the embedded default: SQLite, filesystem Celery broker, email to var/outbox.
run: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo --if-empty
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo_activity
	@echo
	@echo "  Partnership CRM: http://127.0.0.1:$(PORT)/   API docs: http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  Demo logins are printed above (password for all: see seed_demo output)."
	@echo
	DEBUG=$${DEBUG:-true} PORT=$(PORT) $(VENV)/bin/honcho start -f Procfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run --settings=partnership_crm.settings_test
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null --settings=partnership_crm.settings_test

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup

# Schema fuzzing (schemathesis over /api/schema/) as a supplier admin, an account manager, a
# school lead and a teacher; fails on any answer >= 500. The suite runs 1 example per
# operation; FUZZ_EXAMPLES=200 for a longer run. Uses DATABASE_URL like the tests.
FUZZ_EXAMPLES ?= 25
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest -p no:xdist -q -s tests/test_fuzz.py

# The same, also checking answers against the schema (bodies, content types, valid input
# taken and invalid input refused): a report of where the schema and the API disagree.
fuzz-conformance: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_CHECKS=content_type_conformance,response_schema_conformance,negative_data_rejection,positive_data_acceptance \
		$(VENV)/bin/pytest -p no:xdist -q -s tests/test_fuzz.py

bench-tickets: install
	$(PY) -m bench.tickets

bench-nudges: install
	$(PY) -m bench.nudges

bench-reports: install
	$(PY) -m bench.reports

# The dispatcher through worker kills, broker kills, 429/500 storms and slow answers, with
# and without webhook events (bench/chaos; needs PostgreSQL and redis-server).
chaos: install
	$(PY) -m bench.chaos

clean:
	rm -rf $(VENV) var
