# One command for the demo, one for the tests; both set everything up.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-sqlite test-postgres test-django-user lint format bench browser clean

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

# The app and the emulated platform (sandbox) in one threaded server; SQLite files
# and the sandbox's keys under VAR_DIR (default ./var); a Celery worker runs beside
# the server (`manage.py run_demo`) on a broker in var/broker/ (no service needed;
# CELERY_BROKER_URL, e.g. Redis, replaces it), and both stop with Ctrl-C. The
# browser reaches the sandbox under another host name (SANDBOX_HOST), so that app
# and platform keep separate cookies, as two real sites do.
SANDBOX_HOST ?= localhost
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

test: install browser lint test-sqlite test-postgres test-django-user

test-sqlite: install
	DATABASE_URL= $(BIN)/pytest

test-postgres: install
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest -m "not adoption"

# The apps with Django's own auth.User (the example project has a user model of its own).
test-django-user: install
	DATABASE_URL= DJANGO_SETTINGS_MODULE=tests.settings_django_user $(BIN)/pytest \
		tests/accounts/test_sso.py tests/accounts/test_session_check.py \
		tests/accounts/test_account_webhooks.py tests/accounts/test_account_webhooks_live.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
