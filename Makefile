# One command for the demo, one for the tests; both set everything up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install openapi demo test test-sqlite-line test-postgres-line test-sqlite test-postgres test-django-user test-django6 django6-env package constraints lint format bench browser clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Exact versions from constraints.txt; pyproject.toml only holds compatible ranges.
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -c "import lxml.etree, xmlsec; assert lxml.etree.LIBXML_VERSION == xmlsec.get_libxml_version(), 'lxml and xmlsec were built against different libxml2'"
	touch $(STAMP)

install: $(STAMP)

browser:
	bash scripts/install-chromium.sh

# The app and the emulated platform (sandbox) in one threaded server; SQLite files
# and the sandbox's keys (made by demo_setup) under VAR_DIR (default ./var); a Celery worker runs beside
# the server (`manage.py run_demo`) on a broker in var/broker/ (no service needed;
# CELERY_BROKER_URL, e.g. Redis, replaces it), and both stop with Ctrl-C. The
# browser reaches the sandbox under another host name (SANDBOX_HOST), so that app
# and platform keep separate cookies, as two real sites do.
SANDBOX_HOST ?= localhost
# config/settings.py defaults DEBUG to off: the set-up commands of a checkout run with it on;
# `manage.py run_demo` starts the server and the worker with it off all the same.
demo: export DEBUG ?= true
demo: export SANDBOX_ENABLED ?= true
demo: export SITE_URL ?= http://$(HOST):$(PORT)
demo: export MAESTRANO_API_HOST ?= http://$(SANDBOX_HOST):$(PORT)/sandbox
demo: install
	$(PY) manage.py demo_setup
	@echo
	@echo "  ==== Acme CRM demo: the app at $$SITE_URL/, the Maestrano sandbox at $$MAESTRANO_API_HOST/ ===="
	@echo
	@echo "  App and sandbox use two host names ($(HOST) and $(SANDBOX_HOST)) on purpose: browsers keep"
	@echo "  cookies per host name, so one name for both would mix their sessions and break SSO."
	@echo
	@echo "  1) Open $$SITE_URL/ and click \"Log in with Maestrano\"."
	@echo "     On the sandbox's sign-in page type User uid  usr-demo-admin  and Group uid  cld-demo,"
	@echo "     then click \"Sign in to Demo app\"."
	@echo "     -> You land on the dashboard of Demo Company: company and user created, billing set up"
	@echo "        (plan Standard, recurring bill submitted); the initial import of 300 Connec! records"
	@echo "        runs in the background worker and its progress moves live."
	@echo "  2) Click People, open a person, change the last name and click Save."
	@echo "     Click \"See it in the sandbox\": the Connec! record has the new name."
	@echo "  3) Open $$MAESTRANO_API_HOST/connec/groups/cld-demo/people/ and open another person."
	@echo "     In Edit, replace the JSON with  {\"last_name\": \"Elsewhere\"}, keep"
	@echo "     \"Write as: Another app (the sandbox)\" and click Save."
	@echo "     -> In the app, People shows the new name (search \"Elsewhere\")."
	@echo "  4) Open $$MAESTRANO_API_HOST/groups/cld-demo and click \"Cancel service\" next to Demo app."
	@echo "     -> Reload the app: it sends you to the platform's \"access unauthorized\" page;"
	@echo "        Demo Company is locked (logging in again reactivates it)."
	@echo
	@echo "  Stop with Ctrl-C. Start again from scratch: rm -rf $${VAR_DIR:-var} && make demo"
	@echo
	$(PY) manage.py run_demo $(HOST):$(PORT)

# What the suites need (Chromium, the lint, the package's check, the Django 6 virtualenv)
# is made side by side first: about 50 s instead of 90 s one after the other
# (docs/performance.md, "The test suite's own time").
test: install
	$(MAKE) --no-print-directory -j4 --output-sync=target browser lint package django6-env
	$(MAKE) --no-print-directory -j2 --output-sync=line test-sqlite-line test-postgres-line

# `make test`'s suites in two lines side by side (two cores; the PostgreSQL suite waits on its
# server much of the time): SQLite, Django's auth.User and half of the Django 6 run, beside
# PostgreSQL and the other half (each half on SQLite files of its own). The two lines take
# about as long (docs/performance.md, "The test suite's own time"). The PostgreSQL run keeps
# its files (and its pytest cache) in a VAR_DIR of its own; each suite's output is written
# whole when it ends (--output-sync=line: per recipe line), so the two never interleave.
test-sqlite-line: install
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-django-user
	$(MAKE) --no-print-directory test-django6 NOX_TEST_PART=1/2 NOX_FLAGS=--no-install

test-postgres-line: install
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-django6 NOX_TEST_PART=2/2 NOX_FLAGS=--no-install

# Django 6 needs Python >= 3.12: the suite runs again in a nox session (noxfile.py)
# with the newest Django 6 release, on SQLite. PYTHON_DJANGO6 is its interpreter:
# python3.12 from PATH, else one installed by pyenv.
PYTHON_DJANGO6 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; print(sys.executable)' 2>/dev/null && break; done)
test-django6: install
	@test -n "$(PYTHON_DJANGO6)" || { echo "python3.12 is required for the Django 6 tests"; exit 1; }
	NOX_DJANGO6_PYTHON=$(PYTHON_DJANGO6) NOX_TEST_PART=$(NOX_TEST_PART) \
		$(BIN)/nox -s "tests(django='6.1')" $(NOX_FLAGS)

# The Django 6 virtualenv, made (or checked against the constraints) once before the two
# halves of `make test` run in it at the same time.
django6-env: install
	@test -n "$(PYTHON_DJANGO6)" || { echo "python3.12 is required for the Django 6 tests"; exit 1; }
	NOX_DJANGO6_PYTHON=$(PYTHON_DJANGO6) $(BIN)/nox -s "tests(django='6.1')" --install-only

# The sdist and the wheel, checked as an index would check them (twine).
package: install
	rm -rf dist
	$(PY) -m build --quiet --outdir dist .
	$(BIN)/twine check --strict dist/*

# Exact versions of the current .venv, after a dependency changed in pyproject.toml.
constraints: install
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --all --exclude-editable \
		| grep -v '^#' | grep -vi '^pip=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

test-sqlite: install
	DATABASE_URL= $(BIN)/pytest

test-postgres: install
	VAR_DIR=$(CURDIR)/var/test-postgres DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest -m "not adoption" \
		-o cache_dir=$(CURDIR)/var/test-postgres/.pytest_cache

# The apps with Django's own auth.User (the example project has a user model of its own).
test-django-user: install
	DATABASE_URL= DJANGO_SETTINGS_MODULE=tests.settings_django_user $(BIN)/pytest \
		tests/accounts/test_sso.py tests/accounts/test_session_check.py tests/accounts/test_last_login.py \
		tests/accounts/test_account_webhooks.py tests/accounts/test_account_webhooks_live.py

# The committed OpenAPI schemas (docs/openapi/), regenerated from the code.
openapi: install
	$(PY) scripts/openapi.py

# mypy checks the reusable apps, the sandbox and the example project ([tool.mypy] in
# pyproject.toml); its django-stubs plugin loads config/settings.py, which needs DEBUG on
# without a SECRET_KEY. Its cache (.mypy_cache/, ignored by git) makes a run after a small
# change take about 2 s instead of about 10 s.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DEBUG=true $(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .nox dist build
