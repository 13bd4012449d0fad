"""The ``MAESTRANO`` setting, read through one settings object with defaults.

Like DRF's ``api_settings``: ``maestrano_settings.SSO_CLOCK_SKEW_SECONDS`` reads
the project's value or the documented default, and the object resets itself
when a test changes ``settings.MAESTRANO``.

Presets (one per marketplace) are normalised into :class:`Preset` objects:
every key of the wire contract (docs/protocol.md, 'Presets') with its default.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .http import path_segment
from .setting_types import (
    FLAGS,
    MAPPING,
    InvalidSettingType,
    Kind,
    PathPart,
    checked,
    forget_logged,
    kind_of,
    log_once,
)

logger = logging.getLogger(__name__)

DEFAULT_PRESET_NAME = "maestrano"

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: A settings section: a frozen dataclass.
_T = TypeVar("_T", bound="DataclassInstance")

CREATION_MODES = ("real", "virtual")
#: Values of a preset's ``environment`` key.
ENVIRONMENTS = ("test", "uat", "production")

#: Connec! entities this project knows how to subscribe to.
DEFAULT_SUBSCRIPTIONS: dict[str, bool] = {
    "organizations": True,
    "people": True,
    "items": True,
    "invoices": True,
    "company": False,
}

#: Every top-level key of ``settings.MAESTRANO`` with its default.
DEFAULTS: dict[str, Any] = {
    # {name: nested preset dict}; see PRESET_DEFAULTS for the keys.
    "PRESETS": {},
    # The preset served at the un-prefixed URLs (/maestrano/metadata ...).
    "DEFAULT_PRESET": DEFAULT_PRESET_NAME,
    # --- SSO (accounts) ---
    "ADAPTER": "maestrano_accounts.adapter.DefaultAccountAdapter",
    "SSO_CLOCK_SKEW_SECONDS": 120,
    "SSO_ALLOW_IDP_INITIATED": True,
    "SSO_EMAIL_MIGRATION": True,
    # A path, a URL or a URL name (as Django's LOGIN_REDIRECT_URL): the dashboard, behind
    # the script prefix the project is served under.
    "SSO_LOGIN_REDIRECT_URL": "maestrano_accounts:dashboard",
    "SSO_SESSION_CHECK_TIMEOUT": 5.0,
    # When the platform gives no recheck time, or cannot be reached for a
    # session check, check again after this many seconds.
    "SSO_SESSION_RECHECK_SECONDS": 180,
    # Alias in CACHES holding the replay cache and the login tickets (None: the database
    # tables). A cache shared by every process, with atomic add and delete (Redis,
    # Memcached): see sso_state_cache() and docs/settings.md.
    "SSO_STATE_CACHE": None,
    # False: on PostgreSQL, the one statement of a repeat login's login times commits
    # without waiting for the server's disk flush (set_config in that statement); see
    # maestrano_accounts.sso_state.holding_login_writes.
    "SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT": True,
    # --- Account API and billing ---
    "HTTP_TIMEOUT": 10.0,
    "HTTP_RETRIES": 3,
    # "CONNEC" (the Connec! client): ConnecSettings below. "SYNC" belongs to maestrano_sync.conf,
    # "BILLING" to maestrano_accounts.billing.conf.
    # --- the platform-facing DRF views (maestrano_integration.platform_api) ---
    # DRF throttle rates ("<n>/second|minute|hour|day", None = off) of the webhooks, per
    # preset. A scope set here wins over REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].
    "THROTTLE_RATES": {
        "maestrano_account_webhooks": "600/minute",
        "maestrano_notifications": "1200/minute",
    },
    # "AUTH_FAILURES" (refused basic authentications per client address, answered 429
    # before any credential is checked): AuthFailureSettings below.
    # --- operations (docs/operations.md) ---
    "METRICS": {
        "ENABLED": True,
        # Served by maestrano_integration.urls (read when the URLconf loads).
        "PATH": "metrics",
        # ("user", "password"): scrapers authenticate with HTTP basic auth.
        "BASIC_AUTH": None,
        # Addresses or networks (CIDR) allowed without credentials, by the client address
        # (REMOTE_ADDR, or behind proxies REST_FRAMEWORK["NUM_PROXIES"]: auth.request_address).
        "ALLOWED_ADDRESSES": [],
        # With DEBUG on, 127.0.0.1 and ::1 may scrape without credentials.
        "ALLOW_LOOPBACK_IN_DEBUG": True,
    },
    "HEALTH": {
        "LIVE_PATH": "health/live",
        "READY_PATH": "health/ready",
        # Database aliases checked by readiness (None: every alias of DATABASES).
        "DATABASES": None,
        # Checked when a broker is configured (CELERY_BROKER_URL or this value).
        "BROKER_URL": None,
        "BROKER_TIMEOUT": 2.0,
        # An authenticated GET of the default preset's Account API.
        "CHECK_PLATFORM": True,
        "PLATFORM_TIMEOUT": 2.0,
        "PLATFORM_CACHE_SECONDS": 30.0,
    },
    # Load the presets from the developer platform (maestrano_integration.devplatform).
    "DEV_PLATFORM": {
        "HOST": "",  # e.g. https://developer.maestrano.com; empty: presets from PRESETS only
        "PATH": "/api/config/v1/marketplaces",
        "KEY": "",
        "SECRET": "",
        "TIMEOUT": 5.0,
        # Last copy fetched, used when the developer platform cannot be reached.
        "CACHE_FILE": "",
        # After a failed load (cached copy or nothing used), try again this much later.
        "RETRY_SECONDS": 60.0,
    },
}


def section_defaults(cls: type[DataclassInstance]) -> dict[str, Any]:
    """{KEY: default} of a settings section declared as a frozen dataclass (field ``key``)."""
    return {f.name.upper(): _field_default(f) for f in fields(cls)}


def _field_default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise TypeError(f"settings field {f.name} has no default")


def _as_field(value: Any, default: Any) -> Any:
    """A value of the right kind (:mod:`maestrano_integration.setting_types`, already
    checked) as its field holds it: a number of seconds as a float, a list as a tuple."""
    if isinstance(default, float):
        return float(value)
    if isinstance(default, tuple):
        return tuple(value)
    return value


@dataclass(frozen=True)
class ConnecSettings:
    """``MAESTRANO["CONNEC"]``: the Connec! client's page size and transport retries for
    connection errors, 429 and 5xx (exponential backoff with jitter, ``Retry-After``
    honoured up to ``retry_after_max``). These keys were in ``SYNC``, still read there."""

    #: Records per page (``$top``) when listing (initial import, reconciliation); at most 500.
    page_size: int = 200
    http_retries: int = 3
    backoff_factor: float = 0.5
    backoff_jitter: float = 0.25
    backoff_max: float = 30.0
    retry_after_max: float = 60.0


DEFAULTS["CONNEC"] = section_defaults(ConnecSettings)


@dataclass(frozen=True)
class AuthFailureSettings:
    """``MAESTRANO["AUTH_FAILURES"]``: after ``limit`` refused HTTP basic authentications
    from one client address (:func:`maestrano_integration.auth.client_address`) within
    ``window_seconds``, every basic-auth call from that address (metadata, webhooks,
    metrics) is answered 429 for ``window_seconds``, before any credential is checked
    (:mod:`maestrano_integration.auth`). Counted in the cache ``cache`` (an alias of
    ``CACHES``); ``limit`` 0 turns it off."""

    limit: int = 20
    window_seconds: float = 300.0
    cache: str = "default"


DEFAULTS["AUTH_FAILURES"] = section_defaults(AuthFailureSettings)

#: Keys that moved to another section: {(old section, key): new section}. A value set at
#: the old place is still honoured (the new place wins), with a DeprecationWarning and
#: the system check ``maestrano.W013``.
MOVED_KEYS: dict[tuple[str, str], str] = {("SYNC", key): "CONNEC" for key in DEFAULTS["CONNEC"]}

#: Sections of ``MAESTRANO`` that another app owns, with their defaults
#: (:func:`register_section`; ``maestrano_sync.conf`` registers ``SYNC``,
#: ``maestrano_accounts.billing.conf``
#: ``BILLING``).
_SECTIONS: dict[str, dict[str, Any]] = {}


def register_section(name: str, defaults: dict[str, Any]) -> None:
    """Declare ``MAESTRANO[name]`` as the section of an app, with its defaults."""
    _SECTIONS[name] = defaults
    maestrano_settings.reload()


def all_defaults() -> dict[str, Any]:
    """Every top-level key of ``MAESTRANO`` known so far (ours and the apps' sections)."""
    return {**DEFAULTS, **_SECTIONS}


#: Top-level keys of ``MAESTRANO`` whose value maps names the project chooses to values
#: rather than being a section of known keys: ``PRESETS``, ``{name: preset}`` (a preset's
#: own keys are checked by ``maestrano.W011``). Never merged with their default.
NAMED_MAPPINGS = frozenset({"PRESETS"})


def section_keys() -> dict[str, frozenset[str]]:
    """``{section: the keys read there}`` of every section of ``MAESTRANO``: each top-level
    key whose default is a dict (ours, and the apps' :func:`register_section`), but
    :data:`NAMED_MAPPINGS`. A section's keys are those of its default, and those that
    moved out of it (:data:`MOVED_KEYS`: still read at the old place). A value of a
    section that is itself a dict (``BILLING["DEFAULT_PLAN"]``) is a value, not a
    section: its keys are the business of its own rule."""
    sections = {
        name: set(default)
        for name, default in all_defaults().items()
        if isinstance(default, dict) and name not in NAMED_MAPPINGS
    }
    for old_section, key in MOVED_KEYS:
        if old_section in sections:
            sections[old_section].add(key)
    return {name: frozenset(keys) for name, keys in sections.items()}


#: Preset keys (docs/protocol.md, 'Presets') and their defaults, before per-preset derivation.
PRESET_DEFAULTS: dict[str, Any] = {
    "environment": "test",
    "app": {"host": "http://localhost:8000"},
    "api": {"id": "", "key": "", "host": "http://localhost:8000/sandbox", "base": "/api/v1/"},
    "sso": {
        "enabled": True,
        "slo_enabled": True,
        "idm": None,  # defaults to app.host
        "idp": None,  # defaults to api.host
        "init_path": None,  # /maestrano/auth/saml/init or /maestrano/<preset>/auth/saml/init
        "consume_path": None,
        "creation_mode": "real",
        "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "x509_certificate": "",
        "x509_fingerprint": None,  # computed from the certificate
        # Accept rsa-sha1 signatures and sha1 digests from the IdP: the historical platform
        # signs that way (docs/protocol.md, 'Consume'); false refuses them (sha1_refused).
        "allow_sha1": True,
    },
    "webhook": {
        "account": {"groups_path": None, "group_users_path": None},
        "connec": {"notifications_path": None, "subscriptions": DEFAULT_SUBSCRIPTIONS},
    },
    "connec": {"host": None, "base_path": "/api/v2", "timeout": 30.0},
}


def _preset_kinds(defaults: Mapping[str, Any], prefix: str = "") -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for key, default in defaults.items():
        dotted = f"{prefix}{key}"
        kind = FLAGS if key == "subscriptions" else kind_of(default)
        if kind is not None:
            kinds[dotted] = kind
        if kind is MAPPING:
            kinds.update(_preset_kinds(default, prefix=f"{dotted}."))
    return kinds


#: ``{dotted key: kind}`` of the preset keys of a type (booleans, seconds, subscriptions;
#: the sections ``app``, ``sso``... are dicts). Text keys have their own checks.
PRESET_KINDS: dict[str, Kind] = _preset_kinds(PRESET_DEFAULTS)


def preset_type_problems(
    name: PathPart, values: Any, *, prefix: str = ""
) -> list[InvalidSettingType]:
    """The values of preset ``name`` (as configured, before the defaults) of a wrong type."""
    path: tuple[PathPart, ...] = ("PRESETS", name, *filter(None, prefix.split(".")))
    if not prefix and values is not None and not MAPPING.accepts(values):
        return [InvalidSettingType(path=path, value=values, kind=MAPPING)]
    problems: list[InvalidSettingType] = []
    for key, value in (values or {}).items():
        dotted = f"{prefix}{key}"
        kind = PRESET_KINDS.get(dotted) if isinstance(key, str) else None
        if kind is None:
            continue  # not a key of a type (or unknown: maestrano.W011)
        if not kind.accepts(value):
            problems.append(InvalidSettingType(path=(*path, key), value=value, kind=kind))
        elif kind is MAPPING:
            problems.extend(preset_type_problems(name, value, prefix=f"{dotted}."))
    return problems


def _readable_values(values: Any, *, prefix: str = "") -> dict[str, Any]:
    """The values of a preset (as configured) without its sections that are not dicts: what
    can still be read of a preset :func:`preset_type_problems` finds unusable."""
    if not MAPPING.accepts(values):
        return {}
    readable: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        kind = PRESET_KINDS.get(dotted) if isinstance(key, str) else None
        if kind is MAPPING:
            if MAPPING.accepts(value):
                readable[key] = _readable_values(value, prefix=f"{dotted}.")
            continue
        readable[key] = value
    return readable


class ImproperlyConfiguredPreset(LookupError):
    """Raised when a preset name or api id does not match any configured preset."""


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if (
            isinstance(value, Mapping)
            and isinstance(merged.get(key), Mapping)
            and key != "subscriptions"
        ):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def certificate_fingerprint(certificate: str) -> str:
    """SHA-1 fingerprint of a PEM certificate, as ``AA:BB:...`` (empty if unparsable)."""
    from cryptography import x509

    try:
        parsed = x509.load_pem_x509_certificate(certificate.strip().encode())
    except ValueError:
        return ""
    from cryptography.hazmat.primitives.serialization import Encoding

    digest = hashlib.sha1(parsed.public_bytes(Encoding.DER), usedforsecurity=False).hexdigest()
    return ":".join(digest[index : index + 2] for index in range(0, len(digest), 2)).upper()


@dataclass(frozen=True)
class UnusablePreset:
    """A configured preset that cannot be used (:attr:`MaestranoSettings.unusable_presets`)."""

    #: Why: the first of its values that should be a dict and is not.
    error: InvalidSettingType
    #: The preset with the sections it could not read at their defaults: where its endpoints
    #: are (its paths), so that they answer "misconfigured" rather than a page of another
    #: view. Never used for anything else.
    stand_in: Preset

    def raised(self) -> InvalidSettingType:
        """A new exception of :attr:`error` to raise (raising the kept one again and again,
        from every request, would grow its traceback)."""
        error = self.error
        return InvalidSettingType(path=error.path, value=error.value, kind=error.kind)


@dataclass(frozen=True)
class Preset:
    """One marketplace's configuration: every key of docs/protocol.md, 'Presets', resolved."""

    name: str
    is_default: bool
    raw: dict[str, Any] = field(repr=False)

    def typed_value(self, dotted_key: str) -> Any:
        """The value of ``dotted_key``, a key of :data:`PRESET_KINDS`, checked against its
        kind: :class:`~maestrano_integration.setting_types.InvalidSettingType` (an
        ``ImproperlyConfigured``) for a value of another type, never a converted one."""
        node: Any = self.raw
        path: tuple[PathPart, ...] = ("PRESETS", self.name)
        parts = dotted_key.split(".")
        for depth, part in enumerate(parts, start=1):
            path = (*path, part)
            node = node[part]
            checked(node, path=path, kind=PRESET_KINDS[".".join(parts[:depth])])
        return node

    def raw_value(self, dotted_key: str) -> Any:
        """The configured value of ``dotted_key`` (``"api.host"``), before derivation."""
        node: Any = self.raw
        for part in dotted_key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node

    # --- plain keys -------------------------------------------------------
    @property
    def environment(self) -> str:
        return self.raw["environment"]

    @property
    def app_host(self) -> str:
        return self.raw["app"]["host"].rstrip("/")

    @property
    def api_id(self) -> str:
        return self.raw["api"]["id"]

    @property
    def api_key(self) -> str:
        return self.raw["api"]["key"]

    @property
    def api_host(self) -> str:
        return self.raw["api"]["host"].rstrip("/")

    @property
    def api_base(self) -> str:
        base = self.raw["api"]["base"] or "/"
        return "/" + base.strip("/") + "/" if base.strip("/") else "/"

    @property
    def sso_enabled(self) -> bool:
        return self.typed_value("sso.enabled")

    @property
    def slo_enabled(self) -> bool:
        return self.typed_value("sso.slo_enabled")

    @property
    def creation_mode(self) -> str:
        return self.raw["sso"]["creation_mode"]

    @property
    def name_id_format(self) -> str:
        return self.raw["sso"]["name_id_format"]

    @property
    def x509_certificate(self) -> str:
        return (self.raw["sso"]["x509_certificate"] or "").strip()

    @property
    def allow_sha1(self) -> bool:
        """Whether the IdP's SHA-1 signatures and digests are accepted (``sso.allow_sha1``)."""
        return self.typed_value("sso.allow_sha1")

    @cached_property
    def x509_fingerprint(self) -> str:
        configured = self.raw["sso"]["x509_fingerprint"]
        if configured:
            return configured
        return certificate_fingerprint(self.x509_certificate) if self.x509_certificate else ""

    # --- derived keys -------------------------------------------------------
    @property
    def url_prefix(self) -> str:
        """``/maestrano`` for the default preset, ``/maestrano/<name>`` for the others."""
        return "/maestrano" if self.is_default else f"/maestrano/{self.name}"

    @property
    def idm(self) -> str:
        return (self.raw["sso"]["idm"] or self.app_host).rstrip("/")

    @property
    def idp(self) -> str:
        """The IdP entity id: the Issuer of the Response and the Assertion."""
        return (self.raw["sso"]["idp"] or self.api_host).rstrip("/")

    @property
    def init_path(self) -> str:
        return self.raw["sso"]["init_path"] or f"{self.url_prefix}/auth/saml/init"

    @property
    def consume_path(self) -> str:
        return self.raw["sso"]["consume_path"] or f"{self.url_prefix}/auth/saml/consume"

    @property
    def groups_path(self) -> str:
        return (
            self.raw["webhook"]["account"]["groups_path"] or f"{self.url_prefix}/account/groups/:id"
        )

    @property
    def group_users_path(self) -> str:
        return (
            self.raw["webhook"]["account"]["group_users_path"]
            or f"{self.url_prefix}/account/groups/:group_id/users/:id"
        )

    @property
    def notifications_path(self) -> str:
        return (
            self.raw["webhook"]["connec"]["notifications_path"]
            or f"{self.url_prefix}/connec/notifications"
        )

    @property
    def subscriptions(self) -> dict[str, bool]:
        return dict(self.typed_value("webhook.connec.subscriptions"))

    def subscribes_to(self, entity: str) -> bool:
        """Whether the metadata asks the platform for notifications of ``entity``: records of
        an entity not subscribed to are never applied (nor reconciled) here."""
        return self.typed_value("webhook.connec.subscriptions").get(entity) is True

    @property
    def connec_host(self) -> str:
        return (self.raw["connec"]["host"] or self.api_host).rstrip("/")

    @property
    def connec_base_path(self) -> str:
        return "/" + self.raw["connec"]["base_path"].strip("/")

    @property
    def connec_timeout(self) -> float:
        return float(self.typed_value("connec.timeout"))

    @property
    def init_url(self) -> str:
        return self.idm + self.init_path

    @property
    def acs_url(self) -> str:
        """Assertion Consumer Service URL: ``sso.idm + sso.consume_path``."""
        return self.idm + self.consume_path

    @property
    def idp_sso_url(self) -> str:
        return f"{self.api_host}{self.api_base}auth/saml"

    def session_check_url(self, uid: str) -> str:
        """The session check of ``uid`` (``ValueError``: a uid that is no path segment)."""
        return f"{self.api_host}{self.api_base}auth/saml/{path_segment(uid)}"

    def logout_url(self, uid: str) -> str:
        from urllib.parse import urlencode

        return f"{self.api_host}/app_logout?{urlencode({'user_uid': uid})}"

    @property
    def unauthorized_url(self) -> str:
        return f"{self.api_host}/app_access_unauthorized"

    @property
    def account_api_url(self) -> str:
        return f"{self.api_host}{self.api_base}account/"

    def mask_user(self, *, user_uid: str, group_uid: str) -> str:
        """The local uid of ``user_uid`` in ``group_uid``: ``uid.group_uid`` in virtual mode.

        Webhooks carry real ids, but a uid already masked for this group is
        unmasked first, so it is never masked twice (``usr-1.cld-1`` stays
        ``usr-1.cld-1``), and a masked uid in real mode becomes the real one.
        """
        real_uid = user_uid.removesuffix(f".{group_uid}") if group_uid else user_uid
        if self.creation_mode == "virtual":
            return f"{real_uid}.{group_uid}"
        return real_uid

    def to_metadata(self) -> dict[str, Any]:
        """The metadata document (docs/protocol.md, 'Metadata endpoint'). Never includes
        ``api.key``."""
        import platform

        import django

        return {
            "environment": self.environment,
            "app": {"host": self.app_host},
            "api": {
                "id": self.api_id,
                "version": _package_version(),
                "lang": "python",
                "lang_version": f"{platform.python_version()} django/{django.get_version()}",
                "host": self.api_host,
                "base": self.api_base,
            },
            "sso": {
                "enabled": self.sso_enabled,
                "slo_enabled": self.slo_enabled,
                "init_path": self.init_path,
                "consume_path": self.consume_path,
                "creation_mode": self.creation_mode,
                "idm": self.idm,
                "idp": self.idp,
                "name_id_format": self.name_id_format,
                "x509_fingerprint": self.x509_fingerprint,
                "x509_certificate": self.x509_certificate,
            },
            "webhook": {
                "account": {
                    "groups_path": self.groups_path,
                    "group_users_path": self.group_users_path,
                },
                "connec": {
                    "notifications_path": self.notifications_path,
                    "subscriptions": self.subscriptions,
                },
            },
        }


#: Cache backends that cannot hold the replay cache and the login tickets.
UNSAFE_STATE_CACHES: dict[str, str] = {
    "django.core.cache.backends.dummy.DummyCache": "it stores nothing, so replays would pass",
    "django.core.cache.backends.filebased.FileBasedCache": (
        "its add() is not atomic, so two racing requests could both use one assertion"
    ),
}


def _checked_state_cache_alias(alias: Any) -> str | None:
    if alias is None:
        return None
    if not isinstance(alias, str) or alias not in settings.CACHES:
        raise ImproperlyConfigured(
            f"MAESTRANO['SSO_STATE_CACHE'] must be None or an alias of CACHES "
            f"({', '.join(sorted(settings.CACHES)) or 'none'}), not {alias!r}."
        )
    backend = settings.CACHES[alias].get("BACKEND", "")
    if backend in UNSAFE_STATE_CACHES:
        raise ImproperlyConfigured(
            f"MAESTRANO['SSO_STATE_CACHE'] = {alias!r} uses {backend}, which cannot keep the "
            f"SSO replay cache and login tickets: {UNSAFE_STATE_CACHES[backend]}. Use a "
            "cache shared by every process (Redis, Memcached) or None (the database)."
        )
    return alias


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("django-maestrano")
    except PackageNotFoundError:
        return "0.0.0"


def _over(loaded: Mapping[str, Any], local: Mapping[str, Any]) -> dict[str, Any]:
    """Local presets over loaded ones: per name, the local keys win."""
    merged = {
        name: _deep_merge(values, local.get(name) or {})
        if MAPPING.accepts(local.get(name) or {})
        else local[name]  # not a dict: the preset is unusable (MaestranoSettings.presets)
        for name, values in loaded.items()
    }
    merged.update({name: values for name, values in local.items() if name not in loaded})
    return merged


class MaestranoSettings:
    """Attribute access to ``settings.MAESTRANO`` with :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        #: (usable, unusable) presets, kept once loaded (:meth:`preset_tables`).
        self._tables: tuple[dict[str, Preset], dict[str, UnusablePreset]] | None = None
        self._loading = False

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, "MAESTRANO", {}) or {}

    def __getattr__(self, attribute: str) -> Any:
        if attribute in self._cache:
            return self._cache[attribute]
        defaults = all_defaults()
        if attribute not in defaults:
            raise AttributeError(f"Invalid MAESTRANO setting: {attribute!r}")
        if attribute not in self._cache:
            default = defaults[attribute]
            value = self.user_settings.get(attribute, default)
            if (
                isinstance(default, dict)
                and attribute not in NAMED_MAPPINGS
                and isinstance(value, dict)
            ):
                own = value if value is not default else {}
                value = _deep_merge(default, {**self.moved_into(attribute), **own})
            elif (kind := kind_of(default)) is not None and not isinstance(default, dict):
                # A boolean, a whole number or seconds: checked, never converted.
                checked(value, path=(attribute,), kind=kind)
            self._cache[attribute] = value
        return self._cache[attribute]

    def moved_into(self, section: str) -> dict[str, Any]:
        """The values the project set for ``section`` at the keys' old place (deprecated)."""
        found = {}
        for (old_section, key), new_section in MOVED_KEYS.items():
            old = self.user_settings.get(old_section)
            if new_section == section and isinstance(old, Mapping) and key in old:
                warnings.warn(
                    f"MAESTRANO[{old_section!r}][{key!r}] moved to "
                    f"MAESTRANO[{section!r}][{key!r}]; the old place is read until it is removed.",
                    DeprecationWarning,
                    stacklevel=3,
                )
                found[key] = old[key]
        return found

    def origin(self, section: str, key: str) -> str:
        """The section whose ``key`` is read for ``section``: ``section`` itself, or the old
        place of a key that moved (:data:`MOVED_KEYS`) while only the old place sets it."""
        own = self.user_settings.get(section)
        if isinstance(own, Mapping) and key in own:
            return section
        for (old_section, moved_key), new_section in MOVED_KEYS.items():
            old = self.user_settings.get(old_section)
            if (
                (new_section, moved_key) == (section, key)
                and isinstance(old, Mapping)
                and key in old
            ):
                return old_section
        return section

    def section(self, name: str) -> dict[str, Any]:
        """Section ``name`` (a dict of keys, ``METRICS``, ``HEALTH``, ``SYNC``...) over its
        defaults, each key of a type checked (:mod:`maestrano_integration.setting_types`):
        :class:`~maestrano_integration.setting_types.InvalidSettingType` for a value of
        another type, never a converted one (cached)."""
        key = f"_section_{name}"
        if key not in self._cache:
            values = checked(getattr(self, name), path=(name,), kind=MAPPING)
            for setting, default in all_defaults()[name].items():
                kind = kind_of(default)
                if kind is not None:
                    checked(values[setting], path=(self.origin(name, setting), setting), kind=kind)
            self._cache[key] = values
        return self._cache[key]

    def typed(self, name: str, cls: type[_T]) -> _T:
        """Section ``name`` as an instance of its frozen dataclass ``cls`` (cached): its
        values checked by :meth:`section`, seconds held as floats, lists as tuples."""
        key = f"_typed_{name}"
        if key not in self._cache:
            values = self.section(name)
            self._cache[key] = cls(
                **{
                    f.name: _as_field(values[f.name.upper()], default)
                    for f, default in zip(fields(cls), section_defaults(cls).values(), strict=True)
                }
            )
        return self._cache[key]

    def connec(self) -> ConnecSettings:
        """``MAESTRANO["CONNEC"]``, typed."""
        return self.typed("CONNEC", ConnecSettings)

    def auth_failures(self) -> AuthFailureSettings:
        """``MAESTRANO["AUTH_FAILURES"]``, typed."""
        return self.typed("AUTH_FAILURES", AuthFailureSettings)

    def sso_state_cache(self) -> BaseCache | None:
        """``SSO_STATE_CACHE``, checked: this thread's connection to the cache holding the
        replay cache and the login tickets, or ``None`` when they live in the database
        (the default).

        Refused with :class:`~django.core.exceptions.ImproperlyConfigured`: a value that
        is not an alias of ``CACHES``, and the backends that cannot keep them safely
        (a dummy cache remembers nothing, so replays would pass; the file cache's
        ``add`` is not atomic, so two racing requests could both use one assertion).
        """
        from django.core.cache import caches

        if "_sso_state_cache" not in self._cache:
            self._cache["_sso_state_cache"] = _checked_state_cache_alias(self.SSO_STATE_CACHE)
        alias = self._cache["_sso_state_cache"]
        # Django's cache connections are per thread: look it up each time (cheap).
        return None if alias is None else caches[alias]

    def adapter_class(self) -> type:
        return import_string(self.ADAPTER)

    # --- presets ------------------------------------------------------------
    def _expire_fallback(self) -> None:
        """The last load fell back on the cached copy: after ``RETRY_SECONDS``, load again."""
        retry_at = self._cache.get("_retry_at")
        if retry_at is not None and time.monotonic() >= retry_at and not self._loading:
            self._cache.pop("_configured", None)
            self._cache.pop("_retry_at", None)
            self._tables = None

    @property
    def configured_presets(self) -> dict[str, dict[str, Any]]:
        """``PRESETS`` over the presets loaded from the developer platform (if configured).

        A preset of ``PRESETS`` overrides the keys it sets (``app.host`` of this
        deployment, say) of the loaded preset of the same name.
        """
        from . import devplatform

        self._expire_fallback()
        if "_configured" not in self._cache:
            local = checked(self.PRESETS or {}, path=("PRESETS",), kind=MAPPING)
            if self._loading:
                # Another thread is fetching: answer with the cached copy and the local
                # presets rather than wait for it (its request may be served by this very
                # process, as with the sandbox mounted beside the app) or fetch again.
                return _over(devplatform.read_cached_presets(self.section("DEV_PLATFORM")), local)
            options = self.section("DEV_PLATFORM")
            self._loading = True
            try:
                loaded = devplatform.load_configured_presets(options)
            finally:
                self._loading = False
            report = devplatform.last_report
            if report is not None and report.source != "platform":
                self._cache["_retry_at"] = time.monotonic() + float(options["RETRY_SECONDS"])
            self._cache["_configured"] = _over(loaded, local)
        return self._cache["_configured"]

    @property
    def presets(self) -> dict[str, Preset]:
        """The usable presets by name: every configured preset but those that are not a
        dict or have a section that is not one (:attr:`unusable_presets`)."""
        return self.preset_tables()[0]

    @property
    def unusable_presets(self) -> dict[str, UnusablePreset]:
        """The configured presets that cannot be used, by name: a preset that is not a dict,
        or one of whose sections (``sso``, ``webhook``...) is not one (``maestrano.E039``).
        The other presets, and the rest of the project, are served as usual."""
        return self.preset_tables()[1]

    def preset_tables(self) -> tuple[dict[str, Preset], dict[str, UnusablePreset]]:
        """(:attr:`presets`, :attr:`unusable_presets`), built together from one reading of
        :attr:`configured_presets`: a caller that needs both (the routes, a preset looked
        up by name) takes them from here, so that both come from the same presets even
        while another thread loads them from the developer platform (the interim answer,
        built anew on each call and not kept, would otherwise leave an unusable preset
        out of one of them: its endpoints a 404 instead of its 503)."""
        self._expire_fallback()
        tables = self._tables
        if tables is None:
            default_name = self.DEFAULT_PRESET
            configured = self.configured_presets or {default_name: {}}
            presets: dict[str, Preset] = {}
            unusable: dict[str, UnusablePreset] = {}
            for name, values in configured.items():
                is_default = name == default_name
                problems = [
                    problem
                    for problem in preset_type_problems(name, values)
                    if problem.kind is MAPPING
                ]
                if problems:
                    readable = _readable_values(values)
                    unusable[name] = UnusablePreset(
                        error=problems[0],
                        stand_in=Preset(
                            name=name,
                            is_default=is_default,
                            raw=_deep_merge(PRESET_DEFAULTS, readable),
                        ),
                    )
                    continue
                presets[name] = Preset(
                    name=name, is_default=is_default, raw=_deep_merge(PRESET_DEFAULTS, values or {})
                )
            if "_configured" not in self._cache:
                # Interim answer while another thread loads them: not kept.
                return presets, unusable
            for name, broken in unusable.items():
                log_once(
                    broken.error,
                    logger=logger,
                    message=f"Maestrano preset {name!r} is not used (its endpoints answer "
                    "503) until its settings are fixed: %s",
                )
            tables = self._tables = (presets, unusable)
        return tables

    def reload(self) -> None:
        self._cache.clear()
        self._tables = None
        forget_logged()


maestrano_settings = MaestranoSettings()


def setting_type_problems() -> list[InvalidSettingType]:
    """Every value of ``MAESTRANO`` the project set with a wrong type: top-level keys,
    the keys of each section (at their old place too, :data:`MOVED_KEYS`), and the keys
    of each preset, configured or loaded from the developer platform. The system check
    ``maestrano.E039`` reports them; read at run time, each is the same
    :class:`~maestrano_integration.setting_types.InvalidSettingType`."""
    user_settings = maestrano_settings.user_settings
    if not MAPPING.accepts(user_settings):
        return [InvalidSettingType(path=(), value=user_settings, kind=MAPPING)]
    defaults = all_defaults()
    sections = section_keys()
    problems: list[InvalidSettingType] = []
    for name, value in user_settings.items():
        kind = kind_of(defaults[name]) if name in defaults else None
        if kind is None:
            continue
        if not kind.accepts(value):
            problems.append(InvalidSettingType(path=(name,), value=value, kind=kind))
        elif name in sections:
            for key, item in value.items():
                moved_to = MOVED_KEYS.get((name, key))
                default = defaults[moved_to if moved_to else name].get(key)
                item_kind = kind_of(default)
                if item_kind is not None and not item_kind.accepts(item):
                    problems.append(
                        InvalidSettingType(path=(name, key), value=item, kind=item_kind)
                    )
    presets: Mapping[Any, Any]
    try:
        presets = maestrano_settings.configured_presets
    except InvalidSettingType:  # PRESETS, DEV_PLATFORM or a preset: reported here
        local = user_settings.get("PRESETS")
        presets = local if isinstance(local, Mapping) else {}
    for preset_name, values in presets.items():
        problems.extend(preset_type_problems(preset_name, values))
    return problems


def get_preset(name: str | None = None) -> Preset:
    """The preset called ``name`` (the default preset when ``None``):
    :class:`ImproperlyConfiguredPreset` when there is none,
    :class:`~maestrano_integration.setting_types.InvalidSettingType` when it is unusable
    (:attr:`MaestranoSettings.unusable_presets`)."""
    presets, unusable_presets = maestrano_settings.preset_tables()
    key = maestrano_settings.DEFAULT_PRESET if name is None else name
    try:
        return presets[key]
    except KeyError:
        unusable = unusable_presets.get(key)
        if unusable is not None:
            raise unusable.raised() from None
        raise ImproperlyConfiguredPreset(f"No Maestrano preset named {key!r}") from None


def get_preset_by_api_id(api_id: str) -> Preset:
    """The preset whose ``api.id`` is ``api_id``, as :func:`get_preset` answers."""
    presets, unusable_presets = maestrano_settings.preset_tables()
    for preset in presets.values():
        if preset.api_id and preset.api_id == api_id:
            return preset
    for unusable in unusable_presets.values():
        if api_id and unusable.stand_in.raw_value("api.id") == api_id:
            raise unusable.raised()
    raise ImproperlyConfiguredPreset(f"No Maestrano preset with api id {api_id!r}")


def all_presets() -> list[Preset]:
    """The usable presets (an unusable one is ``maestrano.E039``)."""
    return list(maestrano_settings.presets.values())


def routed_presets() -> list[Preset]:
    """The presets whose paths are served (read for their paths only): the usable ones,
    and the stand-ins of the unusable ones, whose endpoints answer "misconfigured"
    (:attr:`MaestranoSettings.unusable_presets`); when ``PRESETS`` itself cannot be read,
    the default preset at its default paths. Never an exception: a broken preset breaks
    its own endpoints, not the URLconf of the project."""
    try:
        presets, unusable_presets = maestrano_settings.preset_tables()
        return [
            *presets.values(),
            *(unusable.stand_in for unusable in unusable_presets.values()),
        ]
    except InvalidSettingType as error:
        log_once(
            error,
            logger=logger,
            message="No Maestrano preset is used (their endpoints answer 503) until the "
            "settings are fixed: %s",
        )
        return [
            Preset(
                name=maestrano_settings.DEFAULT_PRESET,
                is_default=True,
                raw=copy.deepcopy(PRESET_DEFAULTS),
            )
        ]


def routed_preset(name: str | None = None) -> Preset:
    """The preset called ``name`` (the default when ``None``) among :func:`routed_presets`,
    for its paths: a link to an unusable preset's login leads to its "misconfigured" page.
    The default preset when it is not (yet) among them, while another thread loads the
    presets from the developer platform with no cached copy (or ``DEFAULT_PRESET`` names
    none, ``maestrano.E006``), has its derived paths: the page holding a link to its login
    is served, never a 500."""
    default_name = maestrano_settings.DEFAULT_PRESET
    key = default_name if name is None else name
    for preset in routed_presets():
        if preset.name == key:
            return preset
    if key == default_name:
        return Preset(name=key, is_default=True, raw=copy.deepcopy(PRESET_DEFAULTS))
    raise ImproperlyConfiguredPreset(f"No Maestrano preset named {key!r}")


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in ("MAESTRANO", "CACHES"):
        maestrano_settings.reload()


setting_changed.connect(_reload)
