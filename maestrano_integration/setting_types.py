"""The one rule of a ``MAESTRANO`` value's type: a setting is a Python value, never parsed.

A key whose default is a boolean accepts ``True`` or ``False`` only (``"false"`` is a
non-empty string, which ``bool()`` reads as true: for ``sso.allow_sha1`` that would accept
SHA-1 signatures); an integer key an ``int`` (not a ``bool``, not ``"5"``); a number of
seconds an ``int`` or a ``float`` (not a ``bool``); a list key a list or tuple of strings;
a section a dict. Text read from the environment is parsed where it is read
(:mod:`maestrano_integration.env`, django-environ's rules), never here.

A wrong value is the system check ``maestrano.E039``
(:func:`maestrano_integration.checks.check_setting_types`) and, where it is read,
:class:`InvalidSettingType`, an :class:`~django.core.exceptions.ImproperlyConfigured`
with the same message, logged once per process (:func:`log_once`): the value is the same
on every request until the settings change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: A key in a settings path: a section's or a preset's name, a key.
PathPart = Any


@dataclass(frozen=True)
class Kind:
    """What a typed setting accepts."""

    description: str
    accepts: Callable[[Any], bool]


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_texts(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(isinstance(item, str) for item in value)


def _is_flags(value: Any) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(key, str) and isinstance(flag, bool) for key, flag in value.items()
    )


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


BOOLEAN = Kind("a boolean (True or False)", _is_boolean)
INTEGER = Kind("an integer (an int, not a bool or a string)", _is_integer)
NUMBER = Kind("a number (an int or a float, not a bool or a string)", _is_number)
TEXTS = Kind("a list or tuple of strings", _is_texts)
#: ``webhook.connec.subscriptions``: ``{entity: True or False}``.
FLAGS = Kind("a dict of entity names to True or False", _is_flags)
MAPPING = Kind("a dict", _is_mapping)


def kind_of(default: Any) -> Kind | None:
    """The kind of a key from its default; ``None``: a key this rule does not type (text,
    ``None`` defaults: their own checks read them)."""
    if isinstance(default, bool):
        return BOOLEAN
    if isinstance(default, int):
        return INTEGER
    if isinstance(default, float):
        return NUMBER
    if isinstance(default, list | tuple):
        return TEXTS
    if isinstance(default, Mapping):
        return MAPPING
    return None


def setting_path(path: tuple[PathPart, ...]) -> str:
    """``("PRESETS", "default", "sso", "allow_sha1")`` ->
    ``MAESTRANO["PRESETS"]["default"]["sso"]["allow_sha1"]``."""
    return "MAESTRANO" + "".join(
        f"[{json.dumps(part) if isinstance(part, str) else repr(part)}]" for part in path
    )


def type_message(*, path: tuple[PathPart, ...], value: Any, kind: Kind) -> str:
    """What is wrong, the same words in the system check and in the exception."""
    return f"{setting_path(path)} is {value!r} ({type(value).__name__}), not {kind.description}."


class InvalidSettingType(ImproperlyConfigured):
    """A ``MAESTRANO`` value of the wrong type, read at run time (its message is that of
    ``maestrano.E039``)."""

    def __init__(self, *, path: tuple[PathPart, ...], value: Any, kind: Kind) -> None:
        self.path = path
        self.value = value
        self.kind = kind
        super().__init__(type_message(path=path, value=value, kind=kind))


def checked(value: Any, *, path: tuple[PathPart, ...], kind: Kind) -> Any:
    """``value`` unchanged when ``kind`` accepts it, else :class:`InvalidSettingType`."""
    if not kind.accepts(value):
        raise InvalidSettingType(path=path, value=value, kind=kind)
    return value


#: The messages of the wrong values logged since the settings last changed (:func:`log_once`).
_logged: set[str] = set()


def log_once(
    error: InvalidSettingType, *, logger: logging.Logger, message: str, **extra: Any
) -> None:
    """Log ``message`` (``%s``: what is wrong) the first time this process meets ``error``
    since the settings last changed (:func:`forget_logged`), not on every request that
    reads the value: the reason is read once in the log, and a broken setting does not
    flood it."""
    if str(error) in _logged:
        return
    _logged.add(str(error))
    logger.error(message, error, extra=extra)


def forget_logged() -> None:
    """The settings changed: a wrong value met again is logged again."""
    _logged.clear()
