"""A stand-in for an integrated app's HTTP endpoints, for the sandbox's senders to call.

The sandbox delivers Connec! notifications (POST) and account webhooks (DELETE) to the
apps registered with it. ``app_receiver()`` serves on a free local port, records every
request it gets and answers the statuses queued in ``replies`` first, then 200. It speaks
HTTP/1.1 with keep-alive, so a sender that keeps its connection shows one client port.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers.loopback import serving


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    authorization: str
    username: str
    password: str
    client_port: int
    body: Any


@dataclass
class AppReceiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)

    def at(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    @property
    def calls(self) -> list[tuple[str, str, str]]:
        """(method, path, ``Authorization`` header) of every request, in order."""
        return [(r.method, r.path, r.authorization) for r in self.received]

    @property
    def client_ports(self) -> set[int]:
        return {request.client_port for request in self.received}


def _credentials(authorization: str) -> tuple[str, str]:
    _scheme, _, encoded = authorization.partition(" ")
    try:
        username, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return username, password


@contextmanager
def app_receiver() -> Iterator[AppReceiver]:
    state = AppReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record_and_answer(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            authorization = self.headers.get("Authorization") or ""
            request = Received(
                method=self.command,
                path=self.path,
                authorization=authorization,
                username=_credentials(authorization)[0],
                password=_credentials(authorization)[1],
                client_port=self.client_address[1],
                body=json.loads(raw) if raw else None,
            )
            with lock:
                state.received.append(request)
                status = state.replies.pop(0) if state.replies else 200
            answer = b'{"success": true}' if status < 300 else b'{"error": "refused"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_POST = do_DELETE = _record_and_answer

        def log_message(self, *args) -> None:
            pass

    with serving(Handler) as url:
        state.url = url
        yield state
