"""Structured logs: a request id on every line, and JSON output through structlog.

* :class:`RequestIdMiddleware` takes the caller's ``X-Request-ID`` (a load
  balancer's, or the platform's) when it is a sane token, or makes one, and
  sends it back on the response; every log line written while the request runs
  carries it.
* :func:`json_formatter` is a ``logging`` formatter (for ``LOGGING``) writing one
  JSON object per line: time, level, logger, message, request id, and only the
  ``extra=`` keys of :data:`LOGGED_EXTRAS` (preset, group, entity, record ids...).
  Anything else passed in ``extra`` (a SAML response, a payload, credentials) is
  left out: an allow-list, so a new ``extra`` key is never logged by accident.
* :class:`ControlCharacterFilter`, on the handler of :func:`logging_config`, escapes the
  control characters of every record (``\\x00``, ``\\x1b``, ``\\n``...): a value taken
  from a request (a path, a group id, a record's field) never writes a NUL, a terminal
  escape or a forged line into the logs, whatever the logger and the format.

structlog is an optional dependency (``pip install django-maestrano[jsonlogs]``);
only :func:`json_formatter` imports it. See docs/operations.md.
"""

from __future__ import annotations

import contextvars
import logging
import re
import traceback
import uuid
from collections.abc import Callable, Generator, Iterator, MutableMapping
from typing import Any

from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
#: A caller's id is kept only if it looks like an id (no spaces, no markup, bounded).
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

#: ``extra=`` keys written to JSON logs; everything else passed in ``extra`` is dropped.
LOGGED_EXTRAS: tuple[str, ...] = (
    "preset",
    "group",
    "entity",
    "connec_id",
    "object_id",
    "record_id",
    "platform_id",
    "platform_ids",
    "id",
    "run",
    "company",
    "user",
    "authn_request_id",
    "reason",
    "status",
    "path",
    "task",
    "transient",
    "company_created",
    "user_created",
    "user_migrated",
)

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "maestrano_request_id", default=""
)


def current_request_id() -> str:
    return _request_id.get()


def request_id_of(record: logging.LogRecord) -> str:
    """The id of the request ``record`` belongs to: the one running, or the request the
    record names (``django.request`` logs a 404 or a 500 once the middleware has returned,
    with the request in ``extra``); ``""`` outside requests."""
    request_id = current_request_id() or getattr(getattr(record, "request", None), "request_id", "")
    return request_id if isinstance(request_id, str) else ""


def _incoming_request_id(request: HttpRequest) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the logs of this request and returns it in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _incoming_request_id(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to records (for plain-text formats: ``%(request_id)s``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_of(record) or "-"
        return True


#: Never written raw to a log line: C0 and C1 control characters (NUL, ESC, CR, LF...) but
#: the tab, DEL, the Unicode line and paragraph separators, and lone surrogates (which no
#: UTF-8 stream can write).
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: The same, but the newlines of a traceback or a stack, which are its lines.
_CONTROL_CHARACTERS_BUT_NEWLINE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"
)
#: The attributes every record has; the others came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime"}


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def escape_control_characters(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with its control characters written as Python escapes (``\\x00``, ``\\n``,
    ``\\u2028``), as Django writes request paths in its own logs."""
    pattern = _CONTROL_CHARACTERS_BUT_NEWLINE if keep_newlines else _CONTROL_CHARACTERS
    return pattern.sub(_escaped, text)


def _escaping_lines(
    lines: Callable[..., Iterator[str]],
) -> Callable[..., Generator[str, None, None]]:
    def escaped(*args: Any, **kwargs: Any) -> Generator[str, None, None]:
        for line in lines(*args, **kwargs):
            body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
            yield escape_control_characters(body) + end

    return escaped


def format_exception(exc_info: Any) -> str:
    """The traceback ``logging`` writes for ``exc_info``, each exception's message and notes
    escaped whole: a newline in them would forge a line, the traceback's own lines stay."""
    root = traceback.TracebackException(*exc_info[:3])
    pending, seen = [root], set()
    while pending:
        part = pending.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        part.format_exception_only = _escaping_lines(part.format_exception_only)  # type: ignore[method-assign]
        # Notes are written one line per line of each note: escaped whole first.
        notes = getattr(part, "__notes__", None)
        if isinstance(notes, (list, tuple)):
            part.__notes__ = [escape_control_characters(str(note)) for note in notes]
        pending.extend(
            chained
            for chained in (part.__cause__, part.__context__, *(part.exceptions or ()))
            if chained is not None
        )
    return escape_control_characters("".join(root.format()), keep_newlines=True).removesuffix("\n")


class ControlCharacterFilter(logging.Filter):
    """Escapes the control characters of a record: its message, its traceback and stack
    (their newlines kept), and the text values passed in ``extra=``.

    A handler's filter, so every logger that reaches the handler is covered, and both
    formats of :func:`logging_config`. The record is changed in place (handlers after
    this one see it escaped too).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken logging call: the handler reports it
            return True
        if _CONTROL_CHARACTERS.search(message):
            record.msg, record.args = escape_control_characters(message), None
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                record.__dict__[name] = escape_control_characters(value)
        if record.exc_info and record.exc_info[0] is not None:
            # Always from the exception: a handler before this one may have cached its
            # raw traceback in ``exc_text`` (a forged line, once the newline is kept).
            record.exc_text = format_exception(record.exc_info)
        elif record.exc_text:
            record.exc_text = escape_control_characters(record.exc_text, keep_newlines=True)
        if record.stack_info:
            record.stack_info = escape_control_characters(record.stack_info, keep_newlines=True)
        return True


def _add_request_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    request_id = request_id_of(record) if record is not None else current_request_id()
    if request_id:
        event["request_id"] = request_id
    return event


def json_formatter() -> logging.Formatter:
    """A formatter writing each record as one JSON object (use as ``"()"`` in ``LOGGING``)."""
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(allow=LOGGED_EXTRAS),
            _add_request_id,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def logging_config(*, json_output: bool, level: str = "INFO") -> dict[str, Any]:
    """A ``LOGGING`` dict: plain text with the request id, or JSON lines; control characters
    escaped (:class:`ControlCharacterFilter`) on every handler.

    Django's own handlers (its ``DEFAULT_LOGGING``, applied before this) are replaced: its
    console handler on ``django`` (with ``DEBUG``) wrote every ``django.*`` record a second
    time, unfiltered; ``django.server`` lost its handler and fell back to ``logging``'s
    last-resort one, unfiltered too. Both now write through the root's handler; the admins'
    e-mails (``DEBUG`` off) are kept, filtered.
    """
    formatter: dict[str, Any] = (
        {"()": "maestrano_integration.logs.json_formatter"}
        if json_output
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "maestrano_integration.logs.RequestIdFilter"},
            "control_characters": {"()": "maestrano_integration.logs.ControlCharacterFilter"},
            "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": ["request_id", "control_characters"],
            },
            "mail_admins": {
                "class": "django.utils.log.AdminEmailHandler",
                "level": "ERROR",
                "filters": ["require_debug_false", "control_characters"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": ["mail_admins"], "propagate": True},
            "django.server": {"handlers": [], "level": "WARNING", "propagate": True},
            # urllib3 writes each request line at DEBUG, query string included: the
            # platform session check's carries the user's platform session token.
            "urllib3": {"level": _at_least_info(level)},
        },
    }


def _at_least_info(level: str | int) -> str | int:
    """``level``, or ``INFO`` when it is lower (a name ``logging`` does not know is kept,
    for ``dictConfig`` to refuse as it does the root's)."""
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if isinstance(number, int) and number < logging.INFO:
        return "INFO"
    return level
