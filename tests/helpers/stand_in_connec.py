"""A stand-in Connec! on 127.0.0.1 whose answers a test writes: for what the sandbox, which
keeps to the protocol, never answers (pages whose counts lie, a batch answered out of order).

``answer`` gets each request (:class:`Request`) and returns the body to answer with a 200:
JSON (a ``dict`` or ``list``) or raw text (``str``, sent as it is); or ``(status, body)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import preset_values
from tests.helpers.loopback import serving

API_ID = "app-1"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query
    query: dict[str, str]
    body: Any  # the JSON body of a POST or PUT, else None

    @property
    def entity(self) -> str:
        """``/api/v2/<group>/<entity>[/<id>]`` → ``<entity>``."""
        return self.path.split("/")[4]

    @property
    def skip(self) -> int:
        return int(self.query.get("$skip", "0"))

    @property
    def top(self) -> int:
        return int(self.query.get("$top", "100"))


Answer = Callable[[Request], Any]


def _handler(answer: Answer, requests: list[Request]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=url.path,
                query={key: values[-1] for key, values in parse_qs(url.query).items()},
                body=json.loads(raw) if raw else None,
            )
            requests.append(request)
            answered = answer(request)
            status, body = answered if isinstance(answered, tuple) else (200, answered)
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def stand_in_connec(settings: Any, answer: Answer) -> Iterator[list[Request]]:
    """The default preset (``app-1``) talks to a stand-in Connec! answering with ``answer``;
    the requests it received, in order."""
    requests: list[Request] = []
    with serving(_handler(answer, requests)) as url:
        before = settings.MAESTRANO
        settings.MAESTRANO = {
            **before,
            "DEFAULT_PRESET": "maestrano",
            "PRESETS": {
                "maestrano": preset_values(
                    api_id=API_ID, api_key="key-1", connec={"host": url, "timeout": 5}
                )
            },
        }
        try:
            yield requests
        finally:
            settings.MAESTRANO = before
