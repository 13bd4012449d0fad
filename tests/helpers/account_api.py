"""A stand-in for the platform's Account API, answering what a test puts in it.

The sandbox always sends well-formed times (they come from its database); to see what
the app does with an answer the sandbox cannot give (``"2024-02-30T00:00:00Z"``, an
offset of 20 hours), ``account_api()`` serves on a free local port and answers each call
with the envelope of ``answers[(method, resource)]`` (``("POST", "recurring_bills")``),
404 for anything else. Point a preset's ``api.host`` at ``url``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from tests.helpers.loopback import serving

PREFIX = "/api/v1/account/"


@dataclass
class AccountApi:
    url: str = ""
    answers: dict[tuple[str, str], Any] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: ``(method, resource, body)`` of every call, for what the app sent.
    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)


@contextmanager
def account_api() -> Iterator[AccountApi]:
    state = AccountApi()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            sent = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path = urlsplit(self.path).path
            resource = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
            with lock:
                state.calls.append((self.command, resource))
                state.bodies.append((self.command, resource, sent))
                found = (self.command, resource) in state.answers
                data = state.answers.get((self.command, resource))
            if found:
                status, body = 200, {"success": True, "errors": {}, "data": data}
            else:
                status, body = 404, {"success": False, "errors": {"id": ["not found"]}}
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    with serving(Handler) as url:
        state.url = url
        yield state


@contextmanager
def account_api_for_presets(settings: Any) -> Iterator[AccountApi]:
    """:func:`account_api`, with ``settings.MAESTRANO`` (pytest-django's ``settings``) pointing
    the one preset ``maestrano`` (``app-1`` / ``key-1``) at it."""
    from tests.conftest import preset_values

    with account_api() as api:
        settings.MAESTRANO = {
            "DEFAULT_PRESET": "maestrano",
            "PRESETS": {
                "maestrano": preset_values(api_id="app-1", api_key="key-1", api={"host": api.url})
            },
        }
        yield api
