"""Build a preset from environment variables (twelve-factor deploys), and read a boolean one.

Imported from ``settings.py``, so it must not import Django models or settings.
Every key of a preset maps to ``MAESTRANO_`` + its dotted path in capitals with
dots as underscores: ``api.id`` -> ``MAESTRANO_API_ID``.
:func:`boolean_from_environment` reads any other boolean variable of a settings module
(``DEBUG``, ``SECURE_SSL_REDIRECT``...) by the same rule as the preset's booleans.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import environ as django_environ
from django.core.exceptions import ImproperlyConfigured

# (dotted key, type) for every preset key that can come from the environment.
ENVIRONMENT_KEYS: tuple[tuple[str, type], ...] = (
    ("environment", str),
    ("app.host", str),
    ("api.id", str),
    ("api.key", str),
    ("api.host", str),
    ("api.base", str),
    ("sso.enabled", bool),
    ("sso.slo_enabled", bool),
    ("sso.idm", str),
    ("sso.idp", str),
    ("sso.init_path", str),
    ("sso.consume_path", str),
    ("sso.creation_mode", str),
    ("sso.name_id_format", str),
    ("sso.x509_certificate", str),
    ("sso.x509_fingerprint", str),
    ("sso.allow_sha1", bool),
    ("webhook.account.groups_path", str),
    ("webhook.account.group_users_path", str),
    ("webhook.connec.notifications_path", str),
    ("webhook.connec.subscriptions", dict),
    ("connec.host", str),
    ("connec.base_path", str),
    ("connec.timeout", float),
)

#: What a boolean variable may say. django-environ reads anything it does not know as
#: false; a typo in ``MAESTRANO_SSO_ENABLED`` must be an error instead. An empty variable
#: is none of them: it is not set (:func:`_unset`).
_FALSE_WORDS = ("false", "off", "no", "n", "0")
_BOOLEAN_WORDS = frozenset(django_environ.Env.BOOLEAN_TRUE_STRINGS) | frozenset(_FALSE_WORDS)
#: The words, as an error message lists them (any case, spaces around them ignored).
_ACCEPTED_WORDS = (
    f"{', '.join(django_environ.Env.BOOLEAN_TRUE_STRINGS)} for true; "
    f"{', '.join(_FALSE_WORDS)} for false"
)
#: django-environ's float drops every character but digits, ``,``, ``.`` and ``-`` before
#: converting (``1e3`` would read as 13): only plain decimal numbers are let through.
_PLAIN_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*")


def environment_variable_name(dotted_key: str, *, prefix: str = "MAESTRANO_") -> str:
    """``sso.x509_certificate`` -> ``MAESTRANO_SSO_X509_CERTIFICATE``."""
    return prefix + dotted_key.replace(".", "_").upper()


def _unset(text: str) -> bool:
    """Whether a variable that is there is not set all the same: empty or blank
    (``MAESTRANO_SSO_ENABLED=`` in an env file, a compose file's empty ``${VAR}``), so that
    its default applies, as when it is unset. The rule of every boolean, number and list
    read here; text is taken as written."""
    return not text.strip()


def _boolean(text: str, *, name: str) -> bool:
    """``text`` read as django-environ reads a boolean, once it is one of its words."""
    if text.strip().lower() not in _BOOLEAN_WORDS:
        raise ValueError(f"{name} must be true or false ({_ACCEPTED_WORDS}), not {text!r}")
    return bool(django_environ.Env.parse_value(text, bool))


def boolean_from_environment(
    name: str, *, default: bool, environ: Mapping[str, str] | None = None
) -> bool:
    """The boolean environment variable ``name``, for a settings module.

    One of django-environ's boolean words (``true``/``false``, ``1``/``0``,
    ``yes``/``no``, ``on``/``off``, ``y``/``n``, ``ok``; any case), as the preset's
    booleans are read. Unset, empty or blank: ``default``. Any other value raises
    :class:`~django.core.exceptions.ImproperlyConfigured` naming the variable and the
    accepted words, where ``env.bool()`` would read it as false (a typo such as ``ture``
    turning a setting off).
    """
    source = os.environ if environ is None else environ
    text = source.get(name, "")
    if _unset(text):
        return default
    try:
        return _boolean(text, name=name)
    except ValueError as error:
        raise ImproperlyConfigured(f"{error} (unset or empty: {default}).") from None


def _flag(value: Any, *, name: str, entity: str) -> bool:
    """A subscription of a JSON object: a JSON boolean, or a boolean word as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _boolean(value, name=f"{name}[{entity!r}]")
    raise ValueError(f"{name}[{entity!r}] must be true or false, not {value!r}")


def _read(env: django_environ.Env, name: str, kind: type) -> Any:
    """The value of variable ``name`` read by ``env``'s typed getter for ``kind``."""
    if kind is bool:
        return _boolean(env.str(name), name=name)
    if kind is float:
        raw = env.str(name)
        if not _PLAIN_NUMBER.fullmatch(raw):
            raise ValueError(f"{name} must be a number of seconds, not {raw!r}")
        return env.float(name)
    if kind is dict:
        # Either JSON ({"people": true}) or a comma-separated list of subscribed entities.
        if env.str(name).strip().startswith("{"):
            try:
                value = env.json(name)
            except ValueError as error:
                raise ValueError(f"{name} is not valid JSON: {error}") from None
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a JSON object or a comma-separated list")
            return {
                str(key): _flag(flag, name=name, entity=str(key)) for key, flag in value.items()
            }
        return {entity.strip(): True for entity in env.list(name) if entity.strip()}
    # Text (ids, keys, hosts, PEM) is taken as is: django-environ would read a leading
    # ``$`` as a reference to another variable, and an api key may well start with one.
    return env.ENVIRON[name]


def read_certificate(value: str) -> str:
    """Accept PEM text or the path of a PEM file; return the PEM text."""
    if "-----BEGIN" in value or not value.strip():
        return value
    path = Path(value).expanduser()
    if path.is_file():
        return path.read_text()
    return value


def preset_from_environment(
    *, prefix: str = "MAESTRANO_", environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return a nested preset dict holding only the keys set in the environment.

    Unset keys are left out so that the defaults of
    :mod:`maestrano_integration.conf` apply; so are the booleans, numbers and
    subscriptions that are empty or blank (:func:`_unset`), as
    :func:`boolean_from_environment` reads them. A value that is none of what its key
    may say raises :class:`~django.core.exceptions.ImproperlyConfigured` naming the
    variable.
    """
    env = django_environ.Env()
    # django-environ reads os.environ unless given another mapping (tests pass one).
    env.ENVIRON = os.environ if environ is None else environ
    preset: dict[str, Any] = {}
    for dotted_key, kind in ENVIRONMENT_KEYS:
        name = environment_variable_name(dotted_key, prefix=prefix)
        text = env.ENVIRON.get(name)
        if text is None or (kind is not str and _unset(text)):
            continue
        try:
            value = _read(env, name, kind)
        except ValueError as error:
            raise ImproperlyConfigured(f"{error} (unset or empty: the default).") from None
        if dotted_key == "sso.x509_certificate":
            value = read_certificate(value)
        node = preset
        *parents, leaf = dotted_key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return preset
