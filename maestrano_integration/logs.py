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

structlog is an optional dependency (``pip install django-maestrano[jsonlogs]``);
only :func:`json_formatter` imports it. See docs/operations.md.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable
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
            record.request_id = current_request_id() or "-"
        return True


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = current_request_id()
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
    """A ``LOGGING`` dict: plain text with the request id, or JSON lines."""
    formatter: dict[str, Any] = (
        {"()": "maestrano_integration.logs.json_formatter"}
        if json_output
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "maestrano_integration.logs.RequestIdFilter"}},
        "formatters": {"main": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.server": {"level": "WARNING"}},
    }
