"""How a request's text is read: the charset its ``Content-Type`` declares, and its form.

**The charset.** Django builds a request's ``Content-Type`` parameters before any
middleware or view runs, and two kinds of header break that step: a ``charset`` whose
name Python's codec lookup rejects with :class:`ValueError` (a NUL in it:
``charset=\\x00``), and an RFC 2231 parameter naming an unknown encoding
(``charset*=bogus''x``). The exception leaves Django's handler, so every server
answers 500 (``runserver``, gunicorn, the test client raises it). A charset that is no
text encoding (``rot13``, ``base64``) passes that step and fails later, as a 500,
wherever the request's form or query string is read; an unknown one is silently
ignored.

:func:`set_unusable_content_type_aside` runs on Django's ``request_started`` signal
(connected by this app's ``ready()``), the one hook between the server and the
request's construction, for WSGI, ASGI and the test client alike. When the header's
charset is unusable (:func:`maestrano_integration.strict_input.charset_problem`) or
its parameters cannot be read, it keeps only the media type in the request (Django
then reads the request as it reads one without a charset) and records why.
:class:`UnusableCharsetMiddleware` answers such a request 400 with that reason, as
Django's own refusals are answered (the project's ``handler400``:
:func:`maestrano_integration.views.bad_request`, JSON on the APIs' paths).

**The form.** :func:`form_problem` applies
:func:`maestrano_integration.strict_input.check_form_body` to a request's form: for
the views that keep what a form says (the SSO forms, the sandbox's pages and APIs),
instead of Django's reading, which replaces bytes that are not valid text with U+FFFD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest
from django.core.handlers.exception import get_exception_response
from django.http import HttpRequest, HttpResponse
from django.urls import get_resolver
from django.utils.http import parse_header_parameters
from django.utils.log import log_response

from . import strict_input

#: Where :func:`set_unusable_content_type_aside` records why the ``Content-Type`` was
#: set aside: a key of the WSGI environ (``request.META``) or of the ASGI scope.
PROBLEM_KEY = "maestrano.content_type_problem"
MIDDLEWARE = "maestrano_integration.request_text.UnusableCharsetMiddleware"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MULTIPART_CONTENT_TYPE = "multipart/form-data"


def content_type_problem(header: str) -> str | None:
    """Why a ``Content-Type`` header's parameters make its text unreadable, or ``None``."""
    if not header or ";" not in header:
        return None
    try:
        _, params = parse_header_parameters(header)
    except (ValueError, LookupError) as error:
        # An RFC 2231 parameter of an unknown encoding, a NUL in one (Django's parser).
        reason = strict_input.escape_unsafe(str(error)[:120])
        return f"the Content-Type's parameters cannot be read: {reason}"
    charset = params.get("charset")
    if charset is None:
        return None
    problem = strict_input.charset_problem(charset)
    # repr() escapes NUL, other control characters and lone surrogates.
    return f"the Content-Type's charset {charset[:60]!r} {problem}" if problem else None


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip()


def set_unusable_content_type_aside(
    sender: Any,
    environ: dict[str, Any] | None = None,
    scope: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """``request_started`` receiver: a request whose ``Content-Type`` is unusable keeps
    its media type alone, and :data:`PROBLEM_KEY` says why (WSGI ``environ``, ASGI
    ``scope``)."""
    if environ is not None:
        problem = content_type_problem(str(environ.get("CONTENT_TYPE") or ""))
        if problem is not None:
            environ["CONTENT_TYPE"] = _media_type(environ["CONTENT_TYPE"])
            environ[PROBLEM_KEY] = problem
    if scope is not None and scope.get("type") == "http":
        headers = list(scope.get("headers") or ())
        problems = [
            problem
            for name, value in headers
            if bytes(name).lower() == b"content-type"
            and (problem := content_type_problem(bytes(value).decode("latin-1")))
        ]
        if problems:
            scope["headers"] = [
                (name, _media_type(bytes(value).decode("latin-1")).encode("latin-1"))
                if bytes(name).lower() == b"content-type"
                else (name, value)
                for name, value in headers
            ]
            scope[PROBLEM_KEY] = problems[0]


def unusable_content_type(request: HttpRequest) -> str | None:
    """Why :func:`set_unusable_content_type_aside` set this request's ``Content-Type``
    aside, or ``None``."""
    problem = request.META.get(PROBLEM_KEY) or (getattr(request, "scope", None) or {}).get(
        PROBLEM_KEY
    )
    return str(problem) if problem else None


class UnusableContentType(BadRequest):
    """A request whose ``Content-Type`` names a charset no text can be read in; its
    message says why (:func:`maestrano_integration.views.bad_request` answers it)."""


class UnusableCharsetMiddleware:
    """Answer 400 to a request whose ``Content-Type`` was set aside as unusable.

    The refusal, an :class:`UnusableContentType` (a :class:`BadRequest`), is answered by
    the project's ``handler400``, as Django's own refusals: ``{"detail": ...}`` on a JSON
    endpoint with :func:`maestrano_integration.views.bad_request`; logged as one
    ``django.request`` warning naming the reason (no traceback). Put it early in
    ``MIDDLEWARE`` (after the request ids), before anything that reads the body.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = unusable_content_type(request)
        if problem is None:
            return self.get_response(request)
        refusal = UnusableContentType(f"The request is refused: {problem}.")
        # Answered here rather than raised: Django logs a raised BadRequest with its
        # traceback, one per request of a client that sends such headers. One line instead,
        # with the reason, as Django logs its other 4xx answers.
        resolver = get_resolver(getattr(request, "urlconf", None))
        response = get_exception_response(request, resolver, 400, refusal)
        log_response("%s: %s", refusal, request.path, response=response, request=request)
        return response


def form_problem(request: HttpRequest) -> str | None:
    """Why ``request``'s form is not text, or ``None`` (also for a request with no form).

    An ``application/x-www-form-urlencoded`` body is UTF-8, read strictly
    (:func:`maestrano_integration.strict_input.check_form_body`). Django reads a
    ``multipart/form-data`` body's fields itself, in the declared charset or
    ``DEFAULT_CHARSET``, replacing what is not valid text with U+FFFD: a field holding
    U+FFFD is refused. A body Django cannot read (too large, malformed) raises Django's
    own refusal (a 400).
    """
    if request.method != "POST":
        return None
    try:
        if request.content_type == FORM_CONTENT_TYPE:
            strict_input.check_form_body(request.body)
        elif request.content_type == MULTIPART_CONTENT_TYPE:
            charset = request.encoding or settings.DEFAULT_CHARSET
            for name, values in request.POST.lists():
                if "\ufffd" in name or any("\ufffd" in value for value in values):
                    field = strict_input.escape_unsafe(name[:60])
                    return f"form field {field!r} is not valid {charset} (it holds U+FFFD)"
    except strict_input.InputRefused as error:
        return str(error)
    return None
