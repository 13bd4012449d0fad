"""Settings of the example project, read from the environment (django-environ).

Defaults give a development set-up (SQLite files in the project, Celery eager) with
``DEBUG`` off, as a settings module that may be copied must have it: set ``DEBUG=true``
to develop (``make demo``'s set-up commands and the tests do), or give a ``SECRET_KEY``.
The sandbox (the emulated platform, a development tool) is mounted at /sandbox/
only when ``SANDBOX_ENABLED=true`` (``make demo`` and the tests set it), and with
``DEBUG=false`` only when also forced (``SANDBOX_FORCE=true``), which the
deployment check (``manage.py check --deploy``) reports as an error.
Production settings: docs/deploy.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from maestrano_integration.env import boolean_from_environment, preset_from_environment
from maestrano_integration.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Booleans are read with boolean_from_environment, never env.bool(), which reads a word it
# does not know (a typo: DEBUG=ture) as false; unset or empty keeps the default.

# Off unless asked for: Django's technical pages show settings and source to anyone.
DEBUG = boolean_from_environment("DEBUG", default=False)
if not DEBUG and not env.str("SECRET_KEY", default=""):
    raise ImproperlyConfigured(
        "Set SECRET_KEY in the environment when DEBUG is false (DEBUG=true to develop: "
        "DEBUG is off unless set)."
    )
# The "django-insecure-" prefix makes `check --deploy` flag the demo key if it ever leaks out.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-demo-key-change-me-" + "x" * 24)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    "config.apps.ProjectAdminConfig",  # django.contrib.admin, config/admin.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The Maestrano endpoints the platform calls are DRF views; drf_spectacular serves
    # their schema's browsable UI (with DEBUG).
    "rest_framework",
    "drf_spectacular",
    "maestrano_integration",
    "maestrano_accounts",
    "maestrano_sync",
    "crm",
    "maestrano_sandbox",
    # Throttles the admin login (the example project's choice; see docs/deploy.md).
    "axes",
]

MIDDLEWARE = [
    # X-Request-ID in and out, and on every log line of the request.
    "maestrano_integration.logs.RequestIdMiddleware",
    # 400 for a Content-Type whose charset no text can be read in (charset=\x00, rot13...).
    "maestrano_integration.request_text.UnusableCharsetMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "maestrano_accounts.middleware.MaestranoSessionMiddleware",
    # The example app's pages in the company's timezone, locale and currency (Babel).
    "crm.formatting.CompanyFormatsMiddleware",
    "crm.errors.MethodNotAllowedPageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: answers a locked-out login attempt with 429.
    "axes.middleware.AxesMiddleware",
]

# The sandbox is a development tool: mounted when asked for, and with DEBUG off only
# when forced as well (maestrano_sandbox.checks then fails `check --deploy`). Nothing below
# trusts its keys or credentials unless it is mounted or DEBUG is on.
_sandbox_only = boolean_from_environment("SANDBOX_ONLY", default=False)
_sandbox_requested = boolean_from_environment("SANDBOX_ENABLED", default=False) or _sandbox_only
# Read whether or not it matters here: a typo in it is an error in every environment.
_sandbox_force = boolean_from_environment("SANDBOX_FORCE", default=False)
_sandbox_mounted = _sandbox_requested and (DEBUG or _sandbox_force)
if _sandbox_only and not _sandbox_mounted:
    raise ImproperlyConfigured("SANDBOX_ONLY needs DEBUG=true (or SANDBOX_FORCE=true).")

ROOT_URLCONF = "config.urls"

# drf-spectacular's own deploy check builds one schema of the whole URLconf; the
# Maestrano endpoints have their own schemas (/maestrano/schema/, /sandbox/api/schema/).
SPECTACULAR_SETTINGS = {"ENABLE_DJANGO_DEPLOY_CHECK": False}
if _sandbox_only:
    # The emulated platform alone, on its own port (see config/urls/sandbox.py).
    ROOT_URLCONF = "config.urls.sandbox"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _sibling_database_url(url: str, suffix: str) -> str:
    """Same server, database name + suffix (SQLite: file name + suffix)."""
    if url.startswith("sqlite:"):
        stem, dot, extension = url.rpartition(".")
        return f"{stem}{suffix}.{extension}" if dot and "/" not in extension else url + suffix
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + suffix
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


# An empty variable counts as unset (`DATABASE_URL= make test-sqlite`).
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'app.sqlite3'}"
SANDBOX_DATABASE_URL = env.str("SANDBOX_DATABASE_URL", default="") or _sibling_database_url(
    DATABASE_URL, "_sandbox"
)
DATABASES = {
    "default": env.db_url_config(DATABASE_URL),
    "sandbox": env.db_url_config(SANDBOX_DATABASE_URL),
}
#: DATABASE_PREPARE_THRESHOLD (PostgreSQL): unset or empty = no prepared statements
#: (Django's default); N >= 0 = server-side binding, statements prepared after N uses.
_PREPARE_THRESHOLD_RULE = (
    "DATABASE_PREPARE_THRESHOLD must be 0 or more (or unset), a number of uses"
)
try:
    _prepare_threshold = env.int("DATABASE_PREPARE_THRESHOLD", default=None)
except ValueError:
    raise ImproperlyConfigured(
        f"{_PREPARE_THRESHOLD_RULE}, not {env.str('DATABASE_PREPARE_THRESHOLD')!r}."
    ) from None
if _prepare_threshold is not None and _prepare_threshold < 0:
    raise ImproperlyConfigured(f"{_PREPARE_THRESHOLD_RULE}, not {_prepare_threshold}.")
for _alias, _database in DATABASES.items():
    # Persistent connections (seconds; 0 = one per request, Django's default). With a
    # server that reuses its threads (gunicorn gthread, uWSGI) a few hundred seconds
    # saves opening a PostgreSQL connection on every webhook call (see benchmarks/sync.py).
    _database["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
    _database["CONN_HEALTH_CHECKS"] = True
    if _database["ENGINE"] == "django.db.backends.sqlite3":
        # Threaded server + HTTP calls between app and sandbox: wait for the
        # writer instead of failing at once, and let readers run beside it.
        _database.setdefault("OPTIONS", {}).update(
            {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            }
        )
        _database["TEST"] = {"NAME": str(VAR_DIR / f"test_{_alias}.sqlite3")}
        continue
    if _prepare_threshold is not None and _database["ENGINE"] == "django.db.backends.postgresql":
        # Prepared statements (opt-in, docs/deploy.md): parameters bound by the server, and
        # a statement psycopg has sent this many times on a connection prepared, so that
        # PostgreSQL stops planning it anew. Needs persistent connections; not behind a
        # pooler in transaction mode unless it keeps prepared statements (PgBouncer 1.21+).
        _database.setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": _prepare_threshold}
        )
    if env.str("TEST_DATABASE_SUFFIX", default=""):
        # Lets several test runs share one PostgreSQL server without clobbering each other.
        _suffix = env.str("TEST_DATABASE_SUFFIX")
        _database["TEST"] = {"NAME": f"test_{_database['NAME']}_{_suffix}"}
DATABASE_ROUTERS = ["maestrano_sandbox.routers.SandboxRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The example project's own user model; the Maestrano apps work with any (see docs/install.md).
AUTH_USER_MODEL = "crm.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out client before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "maestrano_accounts.backends.MaestranoBackend",
]
# Password logins to the admin from one client address: after AXES_FAILURE_LIMIT failures
# it is locked out for AXES_COOLOFF_MINUTES. SSO logins (no password) are not counted.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
# The same client address as the platform endpoints' (REMOTE_ADDR, or NUM_PROXIES below).
AXES_CLIENT_IP_CALLABLE = "maestrano_integration.auth.request_address"
AXES_RESET_ON_SUCCESS = True
AXES_ONLY_ADMIN_SITE = True
AXES_DISABLE_ACCESS_LOG = True  # every SSO login would add a row; failures are still kept
# The database handler, minus its clean-up queries on logins outside the admin site (SSO).
AXES_HANDLER = "config.axes_handler.AdminSiteAxesHandler"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/"
# After a logout here, the home page (where the platform's logout sends the browser back
# too); unset, maestrano_accounts' own "You are signed out" page (docs/install.md).
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The example app's offline rate table (crm/formatting.py): a plan priced in another currency
# than the company's shows about how much that is. Round, illustrative rates, never fetched:
# set your own, with the date they are from.
CRM_EXCHANGE_RATES = {
    "base": "USD",
    "as_of": "2026-11-30",
    "rates": {"AUD": "1.5", "CAD": "1.4", "EUR": "0.9", "GBP": "0.8", "NZD": "1.7"},
}

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"

# A cache shared by the processes (docs/deploy.md, "Sessions and SSO state in Redis"):
# CACHE_URL=redis://host:6379/1. Unset: Django's default, a local-memory cache per process.
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache_url("CACHE_URL")}
    # django-environ hands ?key_prefix= and ?version= on in lower case, and Django's caches
    # read KEY_PREFIX and VERSION only: without this, two apps sharing one Redis database
    # would share their keys (sessions included) while the URL said otherwise.
    for _name in ("key_prefix", "version", "key_function"):
        if _name in CACHES["default"]:
            CACHES["default"][_name.upper()] = CACHES["default"].pop(_name)
    if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        # Django's backend, reusing its redis-py client, with the one-round-trip operations
        # of a login (maestrano_integration/cache.py).
        CACHES["default"]["BACKEND"] = "maestrano_integration.cache.RedisCache"
# Database sessions, an existing session written with one statement
# (maestrano_accounts/session_store.py).
# The production recipe with a shared cache: maestrano_accounts.cache_session_store (Django's cache
# sessions, an existing session written with one SET XX in Redis).
SESSION_ENGINE = env.str("SESSION_ENGINE", default="maestrano_accounts.session_store")
# The SAML ACS is a cross-site POST: the consume view answers with a redirect so
# that Lax session cookies are sent again (see maestrano_accounts.views).
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = boolean_from_environment("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = boolean_from_environment("CSRF_COOKIE_SECURE", default=SESSION_COOKIE_SECURE)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if boolean_from_environment("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# NUM_PROXIES=n: n reverse proxies in front of the app, each appending the address it saw
# to X-Forwarded-For. DRF's throttles, the refused platform authentications, the metrics
# endpoint's allowed addresses and django-axes then count the client's address, not the
# proxy's (maestrano_integration.auth.request_address; docs/deploy.md). Unset: REMOTE_ADDR.
if env.str("NUM_PROXIES", default=""):
    REST_FRAMEWORK = {"NUM_PROXIES": env.int("NUM_PROXIES")}
# HTTPS (docs/deploy.md): redirect plain HTTP when DEBUG is off; HSTS once HTTPS works.
SECURE_SSL_REDIRECT = boolean_from_environment("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = boolean_from_environment(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False
)
SECURE_HSTS_PRELOAD = boolean_from_environment("SECURE_HSTS_PRELOAD", default=False)
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])
if _sandbox_only:
    # The emulated platform alone serves no app: the app preset's missing api id, key and
    # IdP certificate (which the sandbox itself issues) are no concern of this process.
    SILENCED_SYSTEM_CHECKS += ["maestrano.W001", "maestrano.W002", "maestrano.W004"]

# --- Celery ---------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or None
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
if CELERY_BROKER_URL and CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: a broker that needs no service (`make demo` runs its
    # worker on it). Server and worker exchange messages as files in one folder, each
    # written whole before a reader can see it (config/broker.py).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    _broker_folder = Path(env.str("CELERY_BROKER_FOLDER", default=str(VAR_DIR / "broker")))
    for _folder in ("queue", "control"):
        (_broker_folder / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_folder / "queue"),
        "data_folder_out": str(_broker_folder / "queue"),
        "control_folder": str(_broker_folder / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
# Safety nets for work whose task was lost or failed transiently (`celery -A config beat`).
CELERY_BEAT_SCHEDULE = {
    # Subscriptions, cancellations and charges not yet on the platform are sent again.
    "maestrano-retry-pending-billing": {
        "task": "maestrano_accounts.billing.tasks.retry_pending_billing_task",
        "schedule": 300.0,
    },
    # Bill and recurring-bill statuses read back from the Account API (invoiced, started,
    # ended, cancelled on the platform); shown on the billing page.
    "maestrano-refresh-billing-status": {
        "task": "maestrano_accounts.billing.tasks.refresh_billing_status_task",
        "schedule": env.float("BILLING_STATUS_REFRESH_SECONDS", default=15 * 60.0),
    },
    # Drains are normally enqueued on commit; this catches the ones that were lost.
    "maestrano-sync-drain": {"task": "maestrano_sync.drain_all", "schedule": 60.0},
    # Fetch what changed in Connec! since the last sync (notifications that never came).
    "maestrano-sync-reconcile": {"task": "maestrano_sync.reconcile_all", "schedule": 15 * 60.0},
}

# --- Maestrano ----------------------------------------------------------------
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
_default_preset = {
    "environment": "test",
    "app": {"host": SITE_URL},
    "api": {"id": "", "key": "", "host": f"{SITE_URL}/sandbox", "base": "/api/v1/"},
}
if DEBUG or _sandbox_mounted:
    # Development only: the sandbox's certificate and the demo app's credentials, written
    # by `manage.py demo_setup`, are used when the environment gives none. A deployment
    # never trusts them implicitly (a leftover var/ must not become an accepted IdP).
    _sandbox_certificate = VAR_DIR / "sandbox" / "idp_certificate.pem"
    if _sandbox_certificate.exists():
        _default_preset["sso"] = {"x509_certificate": _sandbox_certificate.read_text()}
    _demo_credentials = VAR_DIR / "sandbox" / "demo_app.env"
    if _demo_credentials.exists():
        # The api id/key the sandbox issued to the demo app.
        environ.Env.read_env(_demo_credentials, overwrite=False)

MAESTRANO: dict[str, Any] = {
    "DEFAULT_PRESET": "maestrano",
    # The SSO replay cache and login tickets in this cache alias instead of the database
    # (a cache shared by every process: CACHE_URL above; docs/deploy.md).
    "SSO_STATE_CACHE": env.str("MAESTRANO_SSO_STATE_CACHE", default="") or None,
    # false: a repeat login's commit does not wait for PostgreSQL's disk flush (docs/deploy.md).
    "SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT": boolean_from_environment(
        "MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT", default=True
    ),
    "PRESETS": {
        "maestrano": _default_preset,
    },
    # What a company's Admins may buy (the billing page, the dashboard's button): each
    # purchase is a bill on the platform; crm.credits grants the SMS once it is billed.
    "BILLING": {
        "PRODUCTS": {"sms": {"description": "100 SMS", "amount_cents": 500, "units": "100"}},
    },
    # /metrics: basic auth (METRICS_USER / METRICS_PASSWORD) or allowed addresses; with
    # DEBUG on, loopback may scrape without credentials (docs/operations.md).
    "METRICS": {
        "BASIC_AUTH": (
            (env.str("METRICS_USER"), env.str("METRICS_PASSWORD"))
            if env.str("METRICS_USER", default="")
            else None
        ),
        "ALLOWED_ADDRESSES": env.list("METRICS_ALLOWED_ADDRESSES", default=[]),
    },
    # /health/ready checks the sandbox's database only when the sandbox is mounted: a
    # deployment has no such database (docs/operations.md).
    "HEALTH": {"DATABASES": ["default", "sandbox"] if _sandbox_mounted else ["default"]},
}


def _merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


# Throttle rates of the webhooks (docs/settings.md, THROTTLE_RATES) as JSON, e.g.
# MAESTRANO_THROTTLE_RATES='{"maestrano_notifications": "6000/minute"}'; the defaults otherwise.
if env.str("MAESTRANO_THROTTLE_RATES", default=""):
    MAESTRANO["THROTTLE_RATES"] = env.json("MAESTRANO_THROTTLE_RATES")

if env.str("MAESTRANO_DEV_PLATFORM_HOST", default=""):
    # Presets loaded from the developer platform (maestrano_integration.devplatform); the
    # values of PRESETS below still override them (app.host of this deployment, say).
    MAESTRANO["DEV_PLATFORM"] = {
        "HOST": env.str("MAESTRANO_DEV_PLATFORM_HOST"),
        "KEY": env.str("MAESTRANO_DEV_PLATFORM_KEY", default=""),
        "SECRET": env.str("MAESTRANO_DEV_PLATFORM_SECRET", default=""),
        "CACHE_FILE": env.str(
            "MAESTRANO_DEV_PLATFORM_CACHE_FILE", default=str(VAR_DIR / "dev_platform_presets.json")
        ),
    }
    # MAESTRANO_* variables (MAESTRANO_APP_HOST...) still override the loaded default preset.
    _overrides = preset_from_environment()
    MAESTRANO["PRESETS"] = {"maestrano": _overrides} if _overrides else {}

else:
    _merge(MAESTRANO["PRESETS"]["maestrano"], preset_from_environment())

MAESTRANO_SANDBOX = {
    "ENABLED": _sandbox_mounted,
    "DATA_DIR": VAR_DIR / "sandbox",
    # Connec! notifications sender (maestrano_sandbox.connec.notifications): retry backoff in
    # seconds.
    "NOTIFICATIONS": {"BACKGROUND": True, "TIMEOUT": 5.0, "BACKOFF": 1.0, "MAX_ATTEMPTS": 6},
    # Fault injection per api id (maestrano_sandbox.faults), e.g. {"app-demo": {"error_rate": 0.1}}.
    "FAULTS": {},
    # Identity and account side (maestrano_sandbox.sessions, maestrano_sandbox.idp,
    # maestrano_sandbox.account_webhooks).
    "SESSION_RECHECK_SECONDS": env.int("SANDBOX_SESSION_RECHECK_SECONDS", default=180),
    "ASSERTION_LIFETIME_SECONDS": 300,
    "WEBHOOK_MAX_ATTEMPTS": 4,
    "WEBHOOK_BACKOFF_SECONDS": 1.0,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
}
if MAESTRANO_SANDBOX["ENABLED"]:
    # Injects configured faults into registered apps' calls to the sandbox APIs only.
    MIDDLEWARE.append("maestrano_sandbox.faults.FaultInjectionMiddleware")

# LOG_FORMAT=json: one JSON object per line with request id, preset, group, entity and
# record ids (needs structlog: the `jsonlogs` extra); plain text otherwise.
LOGGING = logging_config(
    json_output=env.str("LOG_FORMAT", default="plain").lower() == "json",
    level=env.str("LOG_LEVEL", default="INFO"),
)
