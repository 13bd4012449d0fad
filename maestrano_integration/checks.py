"""System checks: report a misconfigured preset at start-up, not at the first login.

Missing credentials warn (errors under ``check --deploy``, which then show no warning
of the same problem), so that a project can migrate and run the sandbox before it has
any; invalid values are errors.
"""

from __future__ import annotations

import difflib
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.urls.converters import SlugConverter

from .auth import configured_basic_auth
from .cache import LOCAL_MEMORY_CACHE
from .conf import (
    CREATION_MODES,
    ENVIRONMENTS,
    MOVED_KEYS,
    PRESET_DEFAULTS,
    Preset,
    all_defaults,
    all_presets,
    maestrano_settings,
    section_keys,
    setting_type_problems,
)
from .env import ENVIRONMENT_KEYS, environment_variable_name
from .setting_types import InvalidSettingType, setting_path

_Check = TypeVar("_Check", bound=Callable[..., list[checks.CheckMessage]])


def preset_setting_hint(preset_name: str, dotted_key: str, *, is_default: bool) -> str:
    """Where to set a preset's key: its environment variable for the default preset
    (:func:`maestrano_integration.env.preset_from_environment`), else its settings path."""
    path = "".join(f"[{part!r}]" for part in dotted_key.split("."))
    where = f"MAESTRANO['PRESETS'][{preset_name!r}]{path}"
    if is_default:
        return f"Set {environment_variable_name(dotted_key)} in the environment, or {where}."
    return f"Set {where} in your settings."


def _certificate_error(pem: str) -> str | None:
    from cryptography import x509

    text = pem.strip()
    if "-----BEGIN" not in text and "\n" not in text and len(text) < 1024:
        # What is left of a path that named no file (maestrano_integration.env).
        return (
            f"no PEM text, and no file at {text!r} (a relative path is read from the "
            f"working directory, {os.getcwd()})"
        )
    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError as error:
        return str(error) or "not a PEM certificate"
    return None


#: How the checkout's sandbox is run (docs/install.md, "Develop against the sandbox"): its
#: settings have DEBUG off unless told, and mount the sandbox only with it on.
_SANDBOX_COMMAND = "DEBUG=true SANDBOX_ONLY=true .venv/bin/python manage.py"
_SANDBOX_HINT = (
    " For development, the sandbox issues credentials: in a checkout of django-maestrano "
    f"(`make install` there), `{_SANDBOX_COMMAND} migrate --database sandbox`, then "
    f"`{_SANDBOX_COMMAND} sandbox_register_app --api-id ID --api-key KEY --app-host URL` and "
    f"`{_SANDBOX_COMMAND} sandbox_export_idp_cert` (docs/install.md, 'Develop against the "
    "sandbox')."
)


class MissingCredentialWarning(checks.Warning):
    """A missing credential in a normal run: silenced once the deployment check of the same
    run (``check --deploy``) reported the same problem as an error, so that the problem is
    reported once, at the more severe level."""

    superseded = False

    def is_silenced(self) -> bool:
        return self.superseded or super().is_silenced()


class _Unsuperseded(threading.local):
    """The warnings of this thread's last normal run, which that run's deployment check
    supersedes (Django runs every normal check of a run before its deployment checks, in
    one thread; another thread's run keeps its own)."""

    def __init__(self) -> None:
        self.warnings: list[MissingCredentialWarning] = []


_unsuperseded = _Unsuperseded()


def _missing_credentials(*, deploy: bool) -> list[checks.CheckMessage]:
    """Missing api id, api key or IdP certificate.

    A warning in normal runs, so that ``makemigrations``, ``migrate`` and the
    sandbox work before the platform issued credentials; an error under
    ``check --deploy``, where SSO and the webhooks would refuse everything (the
    warning of the same problem is then silenced: one message per problem).
    """
    level: type[checks.Error | checks.Warning] = (
        checks.Error if deploy else MissingCredentialWarning
    )
    prefix = "E" if deploy else "W"
    messages: list[checks.CheckMessage] = []
    for preset in all_presets():
        default = preset.is_default
        missing = [
            ("api id", "api.id", not preset.api_id, "001"),
            ("api key", "api.key", not preset.api_key, "002"),
            (
                "IdP certificate (sso.x509_certificate) while SSO is enabled",
                "sso.x509_certificate",
                preset.sso_enabled and not preset.x509_certificate,
                "004",
            ),
        ]
        for what, key, is_missing, number in missing:
            if is_missing:
                messages.append(
                    level(
                        f"Maestrano preset {preset.name!r} has no {what}.",
                        hint=preset_setting_hint(preset.name, key, is_default=default)
                        + _SANDBOX_HINT,
                        id=f"maestrano.{prefix}{number}",
                    )
                )
    return messages


#: The warnings of a preset without credentials (``manage.py check``; errors under
#: ``--deploy``). A test settings module with the sandbox silences them
#: (:func:`maestrano_sandbox.testing.sandbox_settings`): its test platform gives the
#: default preset the sandbox's credentials when a test runs.
MISSING_CREDENTIAL_WARNINGS = ("maestrano.W001", "maestrano.W002", "maestrano.W004")


def _missing_credential_warnings() -> list[checks.CheckMessage]:
    warnings = _missing_credentials(deploy=False)
    _unsuperseded.warnings = [w for w in warnings if isinstance(w, MissingCredentialWarning)]
    return warnings


def _missing_credential_errors() -> list[checks.CheckMessage]:
    errors = _missing_credentials(deploy=True)
    reported = {error.msg for error in errors}
    for warning in _unsuperseded.warnings:
        warning.superseded = warning.msg in reported
    _unsuperseded.warnings = []
    return errors


def reads_settings(check: _Check) -> _Check:
    """Mark a check that reads ``MAESTRANO``: a value of a wrong type it meets is reported
    by :func:`check_setting_types` (``maestrano.E039``), once, and this check says nothing
    of what it could not read (rather than failing the whole ``manage.py check``)."""

    @wraps(check)
    def checked_check(*args: Any, **kwargs: Any) -> list[checks.CheckMessage]:
        try:
            return check(*args, **kwargs)
        except InvalidSettingType:
            return []

    return checked_check  # type: ignore[return-value]


_ENVIRONMENT_KEYS = frozenset(dotted for dotted, _kind in ENVIRONMENT_KEYS)


def _type_hint(problem: InvalidSettingType) -> str:
    path = setting_path(problem.path)
    hint = (
        f"Set {path} to {problem.kind.description}, not {problem.value!r}: settings are "
        "Python values and are never converted (docs/settings.md, 'Types of values')."
    )
    dotted = ".".join(str(part) for part in problem.path[2:])
    if (
        problem.path[:1] == ("PRESETS",)
        and problem.path[1:2] == (maestrano_settings.DEFAULT_PRESET,)
        and dotted in _ENVIRONMENT_KEYS
    ):
        hint += f" From the environment, {environment_variable_name(dotted)} is read as text."
    return hint


@checks.register("maestrano")
def check_setting_types(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A boolean key is ``True`` or ``False``, a whole number an ``int``, seconds an ``int``
    or a ``float``, a list a list or tuple of strings, a section a dict
    (:mod:`maestrano_integration.setting_types`): ``"false"`` would read as true."""
    return [
        checks.Error(str(problem), hint=_type_hint(problem), id="maestrano.E039")
        for problem in setting_type_problems()
    ]


@checks.register("maestrano")
@reads_settings
def check_presets(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Invalid values are errors; missing credentials only warnings (see above)."""
    messages: list[checks.CheckMessage] = [
        *_dev_platform(),
        *_unknown_keys(),
        *_missing_credential_warnings(),
    ]
    default_name = maestrano_settings.DEFAULT_PRESET
    configured = maestrano_settings.configured_presets
    if configured and default_name not in configured:
        messages.append(
            checks.Error(
                f"MAESTRANO['DEFAULT_PRESET'] is {default_name!r} but no preset has that name.",
                hint="Name one of MAESTRANO['PRESETS'] in MAESTRANO['DEFAULT_PRESET'].",
                id="maestrano.E006",
            )
        )
    for preset in all_presets():
        messages.extend(_invalid_values(preset))
    return messages


@checks.register("maestrano")
def check_rest_framework_installed(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The platform-facing endpoints are Django REST framework views."""
    from django.apps import apps

    if apps.is_installed("rest_framework"):
        return []
    return [
        checks.Warning(
            "'rest_framework' is not in INSTALLED_APPS; the Maestrano endpoints the platform "
            "calls (metadata, webhooks) are Django REST framework views.",
            hint="Add 'rest_framework' to INSTALLED_APPS (docs/install.md). Your own "
            "REST_FRAMEWORK settings do not change these endpoints.",
            id="maestrano.W040",
        )
    ]


@checks.register("maestrano")
@reads_settings
def check_auth_failures(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["AUTH_FAILURES"]``: a whole limit of 0 or more, a window of seconds above
    0 and an alias of ``CACHES``. Else refused authentications are not limited (each
    platform call logs why)."""
    limits = maestrano_settings.auth_failures()  # a value of a wrong type: maestrano.E039
    problems = []
    if limits.limit < 0:
        problems.append(f"LIMIT must be 0 (off) or more, not {limits.limit!r}")
    if not 0 < limits.window_seconds < float("inf"):
        problems.append(f"WINDOW_SECONDS must be above 0, not {limits.window_seconds!r}")
    if limits.cache not in settings.CACHES:
        problems.append(
            f"CACHE must be an alias of CACHES "
            f"({', '.join(sorted(settings.CACHES)) or 'none'}), not {limits.cache!r}"
        )
    return [
        checks.Error(
            f"MAESTRANO['AUTH_FAILURES']: {problem}; refused authentications are not limited.",
            hint="See docs/settings.md, AUTH_FAILURES.",
            id="maestrano.E036",
        )
        for problem in problems
    ]


@checks.register("maestrano")
@reads_settings
def check_metrics_basic_auth(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``MAESTRANO["METRICS"]["BASIC_AUTH"]``: ``None`` or ``(user, password)``, two non-empty
    strings. Anything else (an empty password, a ``"user:password"`` string, one item)
    matches no request (:func:`maestrano_integration.auth.configured_basic_auth`)."""
    value = maestrano_settings.METRICS.get("BASIC_AUTH")
    if value is None or configured_basic_auth(value) is not None:
        return []
    return [
        checks.Error(
            "MAESTRANO['METRICS']['BASIC_AUTH'] must be None or (user name, password), both "
            "non-empty text; until it is, no credentials open /metrics.",
            hint="See docs/settings.md, METRICS (the example project reads METRICS_USER and "
            "METRICS_PASSWORD).",
            id="maestrano.E037",
        )
    ]


@checks.register("maestrano", deploy=True)
@reads_settings
def check_auth_failures_shared(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Refused authentications counted in a local-memory cache are counted per process: a
    guesser spread over the workers gets ``LIMIT`` tries from each."""
    limits = maestrano_settings.auth_failures()
    backend = settings.CACHES.get(limits.cache, {}).get("BACKEND")
    if limits.limit <= 0 or backend != LOCAL_MEMORY_CACHE:
        return []
    return [
        checks.Warning(
            f"MAESTRANO['AUTH_FAILURES'] counts refused authentications in "
            f"CACHES[{limits.cache!r}], a local-memory cache: each process counts for itself, "
            f"so a guesser gets LIMIT ({limits.limit}) tries from every worker.",
            hint="Point AUTH_FAILURES['CACHE'] (or CACHES['default']: CACHE_URL=redis://... in "
            "the example project) at a cache shared by every process (docs/deploy.md).",
            id="maestrano.W041",
        )
    ]


@checks.register("maestrano", deploy=True)
@reads_settings
def check_presets_for_deployment(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    return _missing_credential_errors() + _loopback_hosts()


_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _loopback_hosts() -> list[checks.CheckMessage]:
    """A deployed preset whose hosts are this machine's: the defaults, or a development
    set-up. The platform could not reach the app, nor the app the platform."""
    messages: list[checks.CheckMessage] = []
    for preset in all_presets():
        for dotted_key, url in (
            ("app.host", preset.app_host),
            ("api.host", preset.api_host),
            ("connec.host", preset.connec_host),
        ):
            host = (urlsplit(url).hostname or "").lower()
            if host in _LOOPBACK_HOSTS or host.endswith(".localhost"):
                messages.append(
                    checks.Warning(
                        f"Maestrano preset {preset.name!r}: {dotted_key} is {url!r}, this "
                        "machine: the marketplace and the application could not reach "
                        "each other.",
                        hint=preset_setting_hint(
                            preset.name, dotted_key, is_default=preset.is_default
                        ),
                        id="maestrano.W031",
                    )
                )
    return messages


def closest_key(key: Any, known: Iterable[str]) -> str | None:
    """The known key ``key`` is likely a typo of (the case of its letters aside): the one
    rule of the checks' "Did you mean ...?" for every setting."""
    if not isinstance(key, str):
        return None
    by_lower = {name.lower(): name for name in known}
    close = difflib.get_close_matches(key.lower(), by_lower, n=1)
    return by_lower[close[0]] if close else None


def _unknown_setting_keys() -> list[checks.CheckMessage]:
    """Keys of ``MAESTRANO``, or of one of its sections (``BILLING``, ``SYNC``, ``CONNEC``,
    ``METRICS``...: :func:`~maestrano_integration.conf.section_keys`), that nothing reads."""
    user_settings = maestrano_settings.user_settings
    known = all_defaults()
    # (section, or None for MAESTRANO itself; key; the keys read there)
    unknown: list[tuple[str | None, Any, Iterable[str]]] = [
        (None, key, known) for key in sorted(set(user_settings) - set(known), key=str)
    ]
    for section, keys in sorted(section_keys().items()):
        values = user_settings.get(section)
        if isinstance(values, Mapping):
            unknown.extend((section, key, keys) for key in sorted(set(values) - keys, key=str))
    messages: list[checks.CheckMessage] = []
    for where_section, key, read_keys in unknown:
        close = closest_key(key, read_keys)
        where = "MAESTRANO" + (f"[{where_section!r}]" if where_section else "")
        messages.append(
            checks.Warning(
                f"{where}[{key!r}] is not a Maestrano setting and is ignored.",
                hint=f"Did you mean {close!r}?"
                if close
                else f"See docs/settings.md{f', {where_section}' if where_section else ''}.",
                id="maestrano.W010",
            )
        )
    return messages


def _unknown_keys() -> list[checks.CheckMessage]:
    """Keys of ``MAESTRANO``, of its sections or of a preset that nothing reads (typos)."""
    messages = _unknown_setting_keys()
    for (old_section, key), new_section in sorted(MOVED_KEYS.items()):
        if key in (maestrano_settings.user_settings.get(old_section) or {}):
            messages.append(
                checks.Warning(
                    f"MAESTRANO[{old_section!r}][{key!r}] has moved to "
                    f"MAESTRANO[{new_section!r}][{key!r}]; it is still read at the old place "
                    f"unless {new_section!r} sets it.",
                    hint=f"Move the key to MAESTRANO[{new_section!r}] (docs/settings.md).",
                    id="maestrano.W013",
                )
            )
    for name, values in maestrano_settings.configured_presets.items():
        for dotted in _unknown_preset_keys(values or {}, PRESET_DEFAULTS):
            messages.append(
                checks.Warning(
                    f"Maestrano preset {name!r} has an unknown key {dotted!r}; it is ignored.",
                    hint="See the preset keys in docs/settings.md.",
                    id="maestrano.W011",
                )
            )
    return messages


def _dev_platform() -> list[checks.CheckMessage]:
    """Presets that were to come from the developer platform but came from the cache, or not."""
    from . import devplatform

    maestrano_settings.presets  # noqa: B018  (loads them, filling devplatform.last_report)
    report = devplatform.last_report
    if report is None or report.source == "platform":
        return []
    if report.source == "cache":
        return [
            checks.Warning(
                f"The presets could not be loaded from the developer platform {report.host} "
                f"({report.error}); using the cached copy {report.cache_file} "
                f"({', '.join(report.names) or 'no preset'}).",
                hint="Check MAESTRANO_DEV_PLATFORM_HOST, _KEY and _SECRET and that the "
                "platform is reachable; the cached presets may be out of date.",
                id="maestrano.W030",
            )
        ]
    return [
        checks.Error(
            f"The presets could not be loaded from the developer platform {report.host} "
            f"({report.error}) and there is no cached copy"
            + (f" in {report.cache_file}." if report.cache_file else " (no CACHE_FILE set)."),
            hint="Check MAESTRANO_DEV_PLATFORM_HOST, _KEY and _SECRET, and set "
            "MAESTRANO['DEV_PLATFORM']['CACHE_FILE'] so the next outage uses the last copy.",
            id="maestrano.E030",
        )
    ]


def _unknown_preset_keys(
    values: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    unknown: list[str] = []
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            unknown.append(dotted)
        elif (
            isinstance(defaults[key], Mapping)
            and isinstance(value, Mapping)
            and key != "subscriptions"
        ):
            unknown.extend(_unknown_preset_keys(value, defaults[key], prefix=f"{dotted}."))
    return unknown


def _invalid_values(preset: Preset) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    default = preset.is_default
    if not re.fullmatch(SlugConverter.regex, preset.name):
        messages.append(
            checks.Error(
                f"Maestrano preset name {preset.name!r} is not a slug.",
                hint="A preset's name is a segment of its URLs (/maestrano/<name>/metadata, "
                "/maestrano/<name>/logout, its default SSO paths): use letters, digits, '-' "
                "and '_' only, as in MAESTRANO['PRESETS'] = {'acme-market': {...}}.",
                id="maestrano.E038",
            )
        )
    if preset.creation_mode not in CREATION_MODES:
        messages.append(
            checks.Error(
                f"Maestrano preset {preset.name!r} has an unknown SSO creation mode "
                f"{preset.creation_mode!r}.",
                hint="Use 'real' or 'virtual'. "
                + preset_setting_hint(preset.name, "sso.creation_mode", is_default=default),
                id="maestrano.E003",
            )
        )
    if preset.environment not in ENVIRONMENTS:
        messages.append(
            checks.Warning(
                f"Maestrano preset {preset.name!r} has an unknown environment "
                f"{preset.environment!r}.",
                hint=f"Use one of {', '.join(ENVIRONMENTS)}. "
                + preset_setting_hint(preset.name, "environment", is_default=default),
                id="maestrano.W012",
            )
        )
    for key in ("app.host", "api.host", "connec.host", "sso.idm"):
        value = preset.raw_value(key)
        if value and not _is_http_url(value):
            messages.append(
                checks.Error(
                    f"Maestrano preset {preset.name!r}: {key} {value!r} is not an http(s) URL.",
                    hint=preset_setting_hint(preset.name, key, is_default=default),
                    id="maestrano.E008",
                )
            )
    for key in (
        "sso.init_path",
        "sso.consume_path",
        "webhook.account.groups_path",
        "webhook.account.group_users_path",
        "webhook.connec.notifications_path",
    ):
        value = preset.raw_value(key)
        if value and not str(value).startswith("/"):
            messages.append(
                checks.Error(
                    f"Maestrano preset {preset.name!r}: {key} {value!r} must start with '/'.",
                    hint=preset_setting_hint(preset.name, key, is_default=default),
                    id="maestrano.E009",
                )
            )
    if preset.x509_certificate:
        error = _certificate_error(preset.x509_certificate)
        if error:
            messages.append(
                checks.Error(
                    f"Maestrano preset {preset.name!r}: the IdP certificate cannot be "
                    f"parsed ({error}).",
                    hint="Paste the whole PEM block, from -----BEGIN CERTIFICATE----- "
                    "to -----END CERTIFICATE-----, or give the path of a PEM file. "
                    + preset_setting_hint(preset.name, "sso.x509_certificate", is_default=default),
                    id="maestrano.E005",
                )
            )
        elif (
            preset.sso_enabled
            and not preset.allow_sha1
            and _is_historical_key(preset.x509_certificate)
        ):
            messages.append(
                checks.Warning(
                    f"Maestrano preset {preset.name!r}: the IdP certificate holds a 1024-bit "
                    "RSA key, as the historical platform's, which signs with rsa-sha1; this "
                    "preset refuses SHA-1 signatures (sso.allow_sha1 is false).",
                    hint="If this IdP still signs with SHA-1, its logins are refused "
                    "(sha1_refused): ask for an rsa-sha256 certificate, or set "
                    "sso.allow_sha1 back to true (the default). "
                    + preset_setting_hint(preset.name, "sso.allow_sha1", is_default=default),
                    id="maestrano.W014",
                )
            )
    return messages


def _is_historical_key(pem: str) -> bool:
    """Whether the (parsable) certificate's key is RSA of 1024 bits or fewer: the historical
    platform's, whose signatures are rsa-sha1 (docs/protocol.md, 'Consume')."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    return isinstance(key, rsa.RSAPublicKey) and key.key_size <= 1024


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@checks.register("maestrano", checks.Tags.urls)
@reads_settings
def check_announced_paths_served(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Every path a preset announces in its metadata answers with its view, here.

    The platform calls the announced paths as they are: ``maestrano_integration.urls``
    included under a prefix (``path("platform/", include(...))``) serves them under
    that prefix only, and every login and webhook would get a 404."""
    from django.urls import get_resolver

    from .routes import unserved_announced_paths

    # Not served here (the sandbox alone, a worker's URLconf): nothing to check.
    if "maestrano_integration" not in get_resolver().namespace_dict:
        return []
    by_preset: dict[str, list[str]] = {}
    for unserved in unserved_announced_paths():
        answer = "404" if unserved.served_by is None else f"served by {unserved.served_by}"
        by_preset.setdefault(unserved.preset, []).append(f"{unserved.announced!r} ({answer})")
    return [
        checks.Error(
            f"Maestrano preset {preset!r} announces paths to the platform that this URLconf "
            f"does not serve with their views: {', '.join(sorted(paths))}.",
            hint='Include maestrano_integration.urls at the root, path("", include('
            '"maestrano_integration.urls")), before any pattern of yours that matches these '
            "paths; to move them, set the preset's path keys (sso.init_path, "
            "sso.consume_path, webhook.account.groups_path, ...: docs/install.md).",
            id="maestrano.E026",
        )
        for preset, paths in by_preset.items()
    ]


@checks.register("maestrano", checks.Tags.urls)
@reads_settings
def check_served_root(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """With ``FORCE_SCRIPT_NAME``, the project's root is known: each preset's ``app.host``
    (and ``sso.idm``) must name it, or the platform calls URLs outside the project.
    Without it, the WSGI server's ``SCRIPT_NAME`` is known per request: the metadata
    endpoint logs the same problem (:mod:`maestrano_integration.views`)."""
    from django.conf import settings

    from .routes import roots_outside_script_prefix

    if not settings.FORCE_SCRIPT_NAME:
        return []
    return [
        checks.Error(
            outside.describe(),
            hint=f"Set {outside.key} to the URL of the project's root, its script prefix "
            f"included: {outside.expected}. "
            + preset_setting_hint(
                outside.preset.name, outside.key, is_default=outside.preset.is_default
            ),
            id="maestrano.E034",
        )
        for outside in roots_outside_script_prefix(
            script_prefix=str(settings.FORCE_SCRIPT_NAME), presets=all_presets()
        )
    ]


@checks.register("maestrano")
def check_time_zone_support(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The apps store aware datetimes (SAML validity, Connec! ``updated_at``, billing)."""
    from django.conf import settings

    if settings.USE_TZ:
        return []
    return [
        checks.Error(
            "USE_TZ is False; the Maestrano apps store time-zone-aware datetimes (SAML "
            "assertions, Connec! records, bills): the first SSO login would fail (500).",
            hint="Set USE_TZ = True (Django's default since 5.0, docs/install.md).",
            id="maestrano.E027",
        )
    ]


@checks.register("maestrano")
def check_unusable_charset_middleware(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A request whose ``Content-Type`` charset no text can be read in is refused (400) by
    :class:`~maestrano_integration.request_text.UnusableCharsetMiddleware`; without it, the
    charset is ignored (read as no charset), as Django ignores a charset it does not know."""
    from .request_text import MIDDLEWARE

    if MIDDLEWARE in settings.MIDDLEWARE:
        return []
    return [
        checks.Warning(
            f"{MIDDLEWARE!r} is not in MIDDLEWARE: a request whose Content-Type names a "
            "charset no text can be read in (charset=\\x00, rot13, an unknown name) is read "
            "as if it named none instead of being refused with a 400.",
            hint=f'Add "{MIDDLEWARE}" early in MIDDLEWARE, before anything that reads the '
            "body (docs/install.md).",
            id="maestrano.W015",
        )
    ]


#: The labels of the reusable apps (their models, their migrations).
OUR_APP_LABELS = frozenset({"maestrano_integration", "maestrano_accounts", "maestrano_sync"})
#: The levels at which a PostgreSQL statement sees what other transactions committed
#: before it began (PostgreSQL runs READ UNCOMMITTED as READ COMMITTED).
_STATEMENT_SNAPSHOT_LEVELS = frozenset({"read committed", "read uncommitted"})


def _postgresql_aliases() -> list[str]:
    """The PostgreSQL aliases the apps' models are written to (``router.db_for_write``)."""
    from django.apps import apps
    from django.db import connections, router

    aliases: set[str] = set()
    for label in sorted(OUR_APP_LABELS):
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            continue
        aliases.update(router.db_for_write(model) for model in app_config.get_models())
    return sorted(alias for alias in aliases if connections[alias].vendor == "postgresql")


def _configured_isolation(alias: str) -> str | None:
    """The level ``OPTIONS["isolation_level"]`` of ``alias`` names, as PostgreSQL spells it
    (``"repeatable read"``); ``None`` when unset or not a level (Django refuses it when
    connecting)."""
    from django.db import connections
    from django.db.backends.postgresql.psycopg_any import IsolationLevel

    value = connections[alias].settings_dict.get("OPTIONS", {}).get("isolation_level")
    if value is None:
        return None
    try:
        return IsolationLevel(value).name.replace("_", " ").lower()
    except ValueError:
        return None


def _isolation_warning(alias: str, level: str, *, source: str) -> checks.Warning:
    return checks.Warning(
        f"The PostgreSQL database {alias!r} runs transactions at {level.upper()} ({source}). "
        "The Maestrano apps' concurrent work relies on READ COMMITTED, PostgreSQL's "
        "default: an SSO login that waits for a platform removal of the same group (or a "
        "worker that waits for another parking the same record) must then see what that "
        "one committed. At a stricter level a login can recreate what a removal cancelled "
        "meanwhile, or fail with a serialization error.",
        hint="Leave DATABASES[...]['OPTIONS']['isolation_level'] unset (or READ COMMITTED) "
        "for this database, and PostgreSQL's default_transaction_isolation at 'read "
        "committed' (docs/deploy.md, 'PostgreSQL: transaction isolation').",
        id="maestrano.W042",
    )


@checks.register("maestrano")
def check_transaction_isolation(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A PostgreSQL database of the apps set to a stricter level than READ COMMITTED in
    its ``OPTIONS`` (the server's own default is read by
    :func:`check_server_transaction_isolation`, a database check)."""
    messages: list[checks.CheckMessage] = []
    for alias in _postgresql_aliases():
        level = _configured_isolation(alias)
        if level is not None and level not in _STATEMENT_SNAPSHOT_LEVELS:
            messages.append(_isolation_warning(alias, level, source="OPTIONS['isolation_level']"))
    return messages


@checks.register("maestrano", checks.Tags.database)
def check_server_transaction_isolation(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """:func:`check_transaction_isolation` for a database whose ``OPTIONS`` name no level:
    the server's ``default_transaction_isolation`` then applies (``postgresql.conf``,
    ``ALTER DATABASE ... SET``). A database check: Django runs it when given databases
    (``migrate``, ``check --database``), as it needs a connection."""
    from django.db import DatabaseError, connections

    if not databases:
        return []
    messages: list[checks.CheckMessage] = []
    for alias in _postgresql_aliases():
        if alias not in databases or _configured_isolation(alias) is not None:
            continue
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT current_setting('default_transaction_isolation')")
                (level,) = cursor.fetchone()
        except DatabaseError:
            continue  # unreachable: Django's own checks and migrate say so
        if level not in _STATEMENT_SNAPSHOT_LEVELS:
            messages.append(
                _isolation_warning(
                    alias, level, source="the server's default_transaction_isolation"
                )
            )
    return messages
