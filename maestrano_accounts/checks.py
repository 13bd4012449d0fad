"""System checks of maestrano_accounts: the settings and URLs SSO and billing need from the
project."""

from __future__ import annotations

import inspect
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.migrations.exceptions import CircularDependencyError
from django.db.migrations.loader import MigrationLoader
from django.template import engines
from django.template.backends.django import DjangoTemplates
from django.urls import NoReverseMatch, Resolver404, get_resolver, resolve, reverse

from maestrano_integration.cache import LOCAL_MEMORY_CACHE
from maestrano_integration.checks import OUR_APP_LABELS, closest_key, reads_settings
from maestrano_integration.conf import all_presets, maestrano_settings
from maestrano_integration.routes import resolved_path

from . import views
from .adapter import DefaultAccountAdapter, default_login_redirect_url
from .backends import sso_backend
from .billing import services as billing_services
from .billing import views as billing_views

BACKEND = "maestrano_accounts.backends.MaestranoBackend"
MIDDLEWARE = "maestrano_accounts.middleware.MaestranoSessionMiddleware"
REQUEST_CONTEXT_PROCESSOR = "django.template.context_processors.request"


@checks.register("maestrano")
@reads_settings
def check_project_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if sso_backend() is None:
        messages.append(
            checks.Error(
                f"{BACKEND!r} (or a subclass) is not in AUTHENTICATION_BACKENDS: SSO logins "
                "cannot complete.",
                hint=f'Add "{BACKEND}" to AUTHENTICATION_BACKENDS (docs/install.md).',
                id="maestrano.E020",
            )
        )
    if MIDDLEWARE not in settings.MIDDLEWARE:
        messages.append(
            checks.Warning(
                f"{MIDDLEWARE!r} is not in MIDDLEWARE: the platform session is never checked "
                "and cancelled companies keep access until their users log out.",
                hint=f'Add "{MIDDLEWARE}" after AuthenticationMiddleware (docs/install.md).',
                id="maestrano.W021",
            )
        )
    messages.extend(_adapter_messages())
    if str(settings.SESSION_COOKIE_SAMESITE).lower() == "strict" and any(
        preset.sso_enabled for preset in all_presets()
    ):
        messages.append(
            checks.Error(
                'SESSION_COOKIE_SAMESITE is "Strict": the browser arrives from the platform '
                "(a cross-site POST and its redirects) without the session cookie, so every "
                "SSO login is refused as answering no request of this session, and the "
                "session it opens is not sent on the way to the landing page.",
                hint='Set SESSION_COOKIE_SAMESITE = "Lax", Django\'s default (docs/install.md).',
                id="maestrano.E028",
            )
        )
    return messages


@checks.register("maestrano", checks.Tags.templates)
def check_request_context_processor(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``{% company_form_field %}`` reads the request from the template's context: without
    the ``request`` context processor it has none, renders nothing, and the form is not
    protected against a company switch (as ``django.contrib.admin`` checks the context
    processors its templates need, ``admin.W411``)."""
    missing = [
        engine.name
        for engine in engines.all()
        if isinstance(engine, DjangoTemplates)
        and REQUEST_CONTEXT_PROCESSOR not in engine.engine.context_processors
    ]
    if not missing:
        return []
    return [
        checks.Warning(
            f"{REQUEST_CONTEXT_PROCESSOR!r} is not in the context processors of the template "
            f"engine{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}: "
            "{% company_form_field %} renders nothing there, and a form rendered before a "
            "company switch (in another tab) acts in the new company.",
            hint=f'Add "{REQUEST_CONTEXT_PROCESSOR}" to TEMPLATES[...]["OPTIONS"]'
            '["context_processors"] (docs/install.md).',
            id="maestrano.W032",
        )
    ]


def _adapter_messages() -> list[checks.CheckMessage]:
    """``MAESTRANO["ADAPTER"]`` names a subclass of DefaultAccountAdapter that imports."""
    dotted = maestrano_settings.ADAPTER
    hint = (
        "Set MAESTRANO['ADAPTER'] to the dotted path of your subclass of "
        "maestrano_accounts.adapter.DefaultAccountAdapter (docs/adapter.md)."
    )
    try:
        adapter = maestrano_settings.adapter_class()
    except ImportError as error:
        return [
            checks.Error(
                f"MAESTRANO['ADAPTER'] is {dotted!r}, which does not import ({error}): "
                "every SSO login would fail.",
                hint=hint,
                id="maestrano.E029",
            )
        ]
    if not (isinstance(adapter, type) and issubclass(adapter, DefaultAccountAdapter)):
        return [
            checks.Error(
                f"MAESTRANO['ADAPTER'] is {dotted!r}, which is not a subclass of "
                "DefaultAccountAdapter.",
                hint=hint,
                id="maestrano.E029",
            )
        ]
    if adapter.populate_user is DefaultAccountAdapter.populate_user:
        return _unfilled_user_field_messages(get_user_model())
    return []


#: What the default adapter, or the login itself, writes on a new user.
_FILLED_ON_CREATION = frozenset({"first_name", "last_name", "country", "password"})


def _unfilled_user_field_messages(
    user_model: type[AbstractBaseUser],
) -> list[checks.CheckMessage]:
    """The user model's required fields that a new SSO user gets no value for (the default
    adapter's ``populate_user`` fills the username, the email, the names and the country):
    saving the user fails, and the person's first login with it."""
    # Every user model declares USERNAME_FIELD (AbstractBaseUser, the stubs' type, does not).
    username_field = user_model.USERNAME_FIELD  # type: ignore[attr-defined]
    filled = _FILLED_ON_CREATION | {username_field, user_model.get_email_field_name()}
    unfilled = [
        field.name
        for field in user_model._meta.concrete_fields
        if not (
            field.primary_key
            or field.null
            or field.has_default()
            or field.db_default is not models.NOT_PROVIDED
            or getattr(field, "auto_now", False)
            or getattr(field, "auto_now_add", False)
            or field.generated
            or field.name in filled
        )
        and field.get_default() is None  # text fields default to "" when not nullable
    ]
    if not unfilled:
        return []
    return [
        checks.Warning(
            f"{user_model._meta.label} has required fields a user created at their first SSO "
            f"login gets no value for: {', '.join(map(repr, unfilled))}. Saving such a user "
            "fails, and with it the person's first login.",
            hint="Fill them in your adapter's populate_user (MAESTRANO['ADAPTER'], "
            "docs/adapter.md), or give them a default.",
            id="maestrano.W033",
        )
    ]


@checks.register("maestrano", checks.Tags.database)
def check_user_model_migration_order(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The migration that creates the user model must not depend on our migrations.

    Ours depend on it (``PlatformIdentity`` and ``Membership`` point at the user model):
    when the first migration of the user model's app also creates a model pointing at
    ours (a tenant with a foreign key to ``Company``, ``makemigrations`` of a new project
    puts both in ``0001_initial``), the two wait for each other and ``migrate`` stops
    with Django's ``CircularDependencyError``. Said here, before ``migrate``, with the
    way out.

    Building the migration graph costs tens of milliseconds, too much for every command
    and every reload of ``runserver``: a database check, as Django's own, runs only when
    given databases. ``migrate`` gives its own before loading the migrations
    (``get_check_kwargs``), and so does ``check --database default``; ``check --deploy``
    without databases runs it as a deployment check
    (:func:`check_user_model_migration_order_for_deployment`)."""
    if databases is None:  # Django before 6.1 gives None when no database was named
        return []
    _database_check_ran_with[:] = [databases]
    return _user_model_migration_order_errors()


#: The ``databases`` object the database check last ran with. Django runs the deployment
#: checks after the others, in the same ``run_checks`` call and with the same object: the
#: deployment variant then says nothing, so ``check --deploy --database default`` reports
#: E031 once. A later run passes an object of its own (this one is held, so its id is
#: never reused).
_database_check_ran_with: list[Any] = []


@checks.register("maestrano", deploy=True)
def check_user_model_migration_order_for_deployment(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """:func:`check_user_model_migration_order` under ``check --deploy``, which runs no
    database check unless told (``--database``): a deployment runs ``migrate``, so its
    check should say it, and the graph's cost is no matter there. The graph is read from
    the migration files alone (no connection). Not a database check itself: Django 6.1
    leaves those out of a ``check`` that names no database, and gives every other check
    all the aliases instead of ``None``. When the database check ran in the same call,
    it has reported it: once."""
    if _database_check_ran_with and _database_check_ran_with[0] is databases:
        return []
    return _user_model_migration_order_errors()


def _user_model_migration_order_errors() -> list[checks.CheckMessage]:
    loader = MigrationLoader(None, ignore_no_migrations=True, load=False)
    try:
        loader.build_graph()
    except CircularDependencyError:
        pass  # the graph is built; the cycle is looked at below
    except Exception:  # any other migration error: Django reports it at migrate
        return []
    else:
        return []
    user_label = get_user_model()._meta.app_label
    first_nodes = loader.graph.root_nodes(user_label)
    if not first_nodes:
        return []
    first = first_nodes[0]
    # Not the graph's forwards_plan: its walk never ends on a cycle.
    ours: set[tuple[str, str]] = set()
    seen, stack = {first}, [first]
    while stack:
        for parent in loader.graph.node_map[stack.pop()].parents:
            if parent.key[0] in OUR_APP_LABELS:
                ours.add(parent.key)  # where the project's migrations reach ours
            elif parent.key not in seen:
                seen.add(parent.key)
                stack.append(parent.key)
    if not ours:
        return []  # a cycle of the project's own, for Django to report
    named = ", ".join(f"{label}.{name}" for label, name in sorted(ours))
    return [
        checks.Error(
            f"The migration that creates your user model ({settings.AUTH_USER_MODEL}), "
            f"{first[0]}.{first[1]}, depends on {named}, whose "
            "migrations need your user model first: migrate cannot order them "
            "(CircularDependencyError).",
            hint=f"Create the user model in a migration of its own: a model of "
            f"{user_label!r} that points at Company (a tenant) goes in a later migration. "
            f"While {first[1]} is applied nowhere, delete it, leave those models out of "
            f"models.py, run `makemigrations {user_label}`, put them back and run it again "
            "(docs/install.md, 'Your tenant').",
            id="maestrano.E031",
        )
    ]


@checks.register("maestrano")
@reads_settings
def check_sso_state_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["SSO_STATE_CACHE"]``: an alias of ``CACHES`` whose backend can hold it."""
    try:
        maestrano_settings.sso_state_cache()
    except ImproperlyConfigured as error:
        return [
            checks.Error(
                str(error),
                hint="docs/settings.md, SSO_STATE_CACHE; docs/deploy.md for the recipe.",
                id="maestrano.E022",
            )
        ]
    return []


@checks.register("maestrano", deploy=True)
@reads_settings
def check_sso_state_cache_shared(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A local-memory cache is per process: another worker would not know an assertion
    was used, nor find a ticket issued by this one."""
    alias = maestrano_settings.SSO_STATE_CACHE
    if not isinstance(alias, str) or alias not in settings.CACHES:
        return []  # reported by check_sso_state_cache
    if settings.CACHES[alias].get("BACKEND") != LOCAL_MEMORY_CACHE:
        return []
    return [
        checks.Error(
            f"MAESTRANO['SSO_STATE_CACHE'] = {alias!r} is a local-memory cache: each process "
            "has its own, so an assertion used in one worker could be replayed in another.",
            hint="Point it at a cache shared by every process (CACHE_URL=redis://..., "
            "docs/deploy.md) or leave it unset (the database).",
            id="maestrano.E023",
        )
    ]


@checks.register("maestrano")
@reads_settings
def check_default_plan(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["BILLING"]["DEFAULT_PLAN"]`` within a plan's limits: the plan is created
    from it on first use, and one outside them is not (no company is subscribed to it)."""
    errors = billing_services.default_plan_errors()
    if not errors:
        return []
    return [
        checks.Error(
            str(billing_services.InvalidDefaultPlan(errors)),
            hint="Fix the setting (docs/settings.md, BILLING): the admin's limits of a plan "
            "apply. A plan already stored under its name is used as it is.",
            id="maestrano.E032",
        )
    ]


@checks.register("maestrano")
@reads_settings
def check_default_plan_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["BILLING"]["DEFAULT_PLAN"]`` has only the keys a plan is created from: any
    other is ignored, so a typo (``free_trail_days``, ``price`` for ``price_cents``) gives
    a plan the developer did not mean, with nothing said."""
    unknown = billing_services.default_plan_unknown_keys()
    if not unknown:
        return []
    named = []
    for key in unknown:
        close = closest_key(key, billing_services.DEFAULT_PLAN_KEYS)
        named.append(f"{key!r} (did you mean {close!r}?)" if close else repr(key))
    return [
        checks.Error(
            "MAESTRANO['BILLING']['DEFAULT_PLAN'] has keys that are not a plan's: "
            f"{', '.join(named)}. Nothing reads them, so the default plan would not be the "
            "one the setting describes.",
            hint="Its accepted keys are "
            + ", ".join(billing_services.DEFAULT_PLAN_KEYS)
            + " (docs/settings.md, BILLING).",
            id="maestrano.E033",
        )
    ]


@checks.register("maestrano")
@reads_settings
def check_products(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each product of ``MAESTRANO["BILLING"]["PRODUCTS"]`` is one that can be bought (a
    slug key, a description and a price a bill takes): one that is not is left off the
    billing page and its ``buy/<key>/`` answers 404, which nobody would notice otherwise."""
    return [
        checks.Error(
            f"MAESTRANO['BILLING']['PRODUCTS'][{key!r}] cannot be bought, so it is not offered: "
            + "; ".join(problems)
            + ".",
            hint='A product is {"description": "100 SMS", "amount_cents": 500, "units": "100"} '
            "(units optional) under a slug key, the charges' product (docs/settings.md, "
            "BILLING; docs/billing.md).",
            id="maestrano.E040",
        )
        for key, problems in billing_services.product_errors().items()
    ]


#: The billing pages (URL name, view, example arguments), each checked by maestrano.E025.
_BILLING_PAGES: list[tuple[str, Any, dict[str, Any]]] = [
    ("overview", billing_views.billing_overview, {}),
    ("buy", billing_views.buy, {"product": "product"}),
    ("purchase", billing_views.purchase, {"charge_id": 1}),
    ("purchase-status", billing_views.purchase_status, {"charge_id": 1}),
    ("plans", billing_views.plans, {}),
    ("choose-plan", billing_views.choose_plan, {"plan_id": 1}),
]


def _serves(name: str, view: Any, *, kwargs: dict[str, Any] | None = None) -> bool:
    """Whether the URL of ``name`` leads to ``view`` (no other pattern serves it first).
    ``reverse()`` puts the script prefix (``FORCE_SCRIPT_NAME``) before the path that
    ``resolve()`` takes."""
    try:
        found = resolve(resolved_path(reverse(name, kwargs=kwargs))).func
    except (NoReverseMatch, Resolver404):
        return False
    return inspect.unwrap(found) is inspect.unwrap(view)


@checks.register("maestrano", checks.Tags.urls)
@reads_settings
def check_login_redirect_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["SSO_LOGIN_REDIRECT_URL"]`` leads somewhere: read as Django reads
    ``LOGIN_REDIRECT_URL``, a value without ``/`` or ``.`` is a URL name, and one that
    names no URL would fail every SSO login after its assertion was accepted. Not
    checked where the SSO views are not served (the sandbox alone, a worker's URLconf)."""
    if "maestrano_accounts" not in get_resolver().namespace_dict:
        return []
    try:
        default_login_redirect_url()
    except NoReverseMatch:
        value = maestrano_settings.SSO_LOGIN_REDIRECT_URL
        return [
            checks.Error(
                f"MAESTRANO['SSO_LOGIN_REDIRECT_URL'] is {value!r}: no URL has that name, and "
                "a value without '/' or '.' is read as a URL name (as LOGIN_REDIRECT_URL).",
                hint='Give a path ("/home/"), a URL, or the name of a URL of the project '
                "(\"app:home\"); the default is 'maestrano_accounts:dashboard' "
                "(docs/settings.md).",
                id="maestrano.E035",
            )
        ]
    return []


@checks.register("maestrano", checks.Tags.urls)
@reads_settings
def check_url_namespace(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Our URL namespaces, where the project serves them, must lead to our views.

    ``maestrano_accounts``: the ACS redirects to ``maestrano_accounts:sso-complete``;
    another ``app_name = "maestrano_accounts"`` included before ``maestrano_integration.urls``
    takes the namespace (Django warns, ``urls.W005``), and every SSO login would then fail
    at the ACS. ``maestrano_billing``: a pattern of the project listed before the billing
    pages' include and matching their path (its own ``billing/`` app) serves it instead,
    and the pages' forms and redirects lead there."""
    namespaces = get_resolver().namespace_dict
    messages: list[checks.CheckMessage] = []
    # Not served here (the sandbox alone, a worker's URLconf): nothing to check.
    if "maestrano_accounts" in namespaces and not _serves(
        "maestrano_accounts:sso-complete", views.sso_complete
    ):
        messages.append(
            checks.Error(
                "The URL namespace 'maestrano_accounts' does not lead to the SSO completion "
                "view (maestrano_accounts:sso-complete): the ACS could not hand any login over.",
                hint="Include maestrano_integration.urls (docs/install.md); if another app also "
                'has app_name = "maestrano_accounts", include maestrano_integration.urls '
                "before it.",
                id="maestrano.E024",
            )
        )
    shadowed = [
        name
        for name, view, kwargs in _BILLING_PAGES
        if "maestrano_billing" in namespaces
        and not _serves(f"maestrano_billing:{name}", view, kwargs=kwargs)
    ]
    if shadowed:
        messages.append(
            checks.Error(
                f"The billing pages' URLs ({', '.join(shadowed)}) are served by another view: "
                "their links, forms and redirects would lead there.",
                hint="Include maestrano_accounts.billing.urls under a prefix no pattern of "
                'yours serves first, e.g. path("maestrano/billing/", include(...)) '
                "(docs/billing.md).",
                id="maestrano.E025",
            )
        )
    return messages
