# One command for the demo, one for the tests; both set everything up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-sqlite test-postgres lint format bench browser clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import lxml.etree, xmlsec; assert lxml.etree.LIBXML_VERSION == xmlsec.get_libxml_version(), 'lxml and xmlsec were built against different libxml2'"
	touch $(STAMP)

install: $(STAMP)

browser:
	bash scripts/install-chromium.sh

demo: install
	$(PY) manage.py demo_setup
	@echo
	@echo "  App:      http://$(HOST):$(PORT)/"
	@echo "  Sandbox:  http://$(HOST):$(PORT)/sandbox/"
	@echo
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install browser lint test-sqlite test-postgres

test-sqlite: install
	DATABASE_URL= $(BIN)/pytest

test-postgres: install
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
