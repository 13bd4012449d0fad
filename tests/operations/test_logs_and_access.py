"""Request ids, JSON logs without secrets, and who may read /metrics."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from urllib.parse import quote

import pytest
from django.utils.module_loading import import_string

from maestrano_integration.logs import escape_control_characters, json_formatter, logging_config
from tests.helpers.processes import run_python

from .conftest import SCRAPER, basic_auth


@pytest.fixture
def json_lines():
    """Everything logged during the test, as the JSON formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def test_a_request_id_is_propagated_or_made(client):
    given = client.get("/health/live", HTTP_X_REQUEST_ID="lb-1234.abc")
    assert given["X-Request-ID"] == "lb-1234.abc"
    made = client.get("/health/live")
    assert len(made["X-Request-ID"]) == 32
    hostile = client.get("/health/live", HTTP_X_REQUEST_ID="<script>" + "x" * 300)
    assert hostile["X-Request-ID"] != "<script>" + "x" * 300
    assert len(hostile["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_json_logs_carry_the_request_id_and_context_but_never_credentials(
    client, two_presets, json_lines
):
    response = client.post(
        "/maestrano/connec/notifications",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth("app-1", "a-wrong-secret"),
        HTTP_X_REQUEST_ID="req-42",
    )
    assert response.status_code == 401
    [line] = [entry for entry in json_lines() if entry["event"].startswith("Refused platform")]
    assert line["request_id"] == "req-42"
    assert line["preset"] == "maestrano"
    assert line["level"] == "warning" and line["logger"] == "maestrano_integration.auth"
    assert "a-wrong-secret" not in json.dumps(json_lines())


def test_only_allowed_extra_keys_are_written(json_lines):
    logging.getLogger("tests.ops").warning(
        "Something about a record",
        extra={
            "preset": "maestrano",
            "group": "cld-1",
            "entity": "people",
            "connec_id": "c-1",
            "saml_response": "PHNhbWxwOlJlc3BvbnNl...",
            "api_key": "secret",
        },
    )
    [line] = json_lines()
    assert {"preset", "group", "entity", "connec_id", "time"} <= set(line)
    assert "saml_response" not in line and "api_key" not in line


@pytest.mark.django_db
def test_metrics_are_refused_to_strangers_when_not_in_debug(client, settings):
    settings.DEBUG = False
    settings.MAESTRANO = {"METRICS": {}}
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_with_basic_auth(client, settings):
    settings.MAESTRANO = {"METRICS": {"BASIC_AUTH": SCRAPER}}
    refused = client.get("/metrics", HTTP_AUTHORIZATION=basic_auth(SCRAPER[0], "wrong"))
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Basic")
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=basic_auth(*SCRAPER))
    assert allowed.status_code == 200
    assert b"maestrano_sso_logins_total" in allowed.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("configured", "sent"),
    [
        pytest.param(("prometheus", ""), ("prometheus", ""), id="empty-password"),
        pytest.param(("", ""), ("", ""), id="empty-pair"),
        pytest.param(["prometheus", None], ("prometheus", "None"), id="no-password"),
        pytest.param("prometheus:secret", ("p", "r"), id="a-string-not-a-pair"),
        pytest.param(("prometheus",), ("prometheus", ""), id="no-second-item"),
    ],
)
def test_metrics_basic_auth_that_is_no_pair_of_secrets_opens_nothing(
    client, settings, configured, sent
):
    # METRICS_PASSWORD left empty, a "user:password" string, a one-item tuple: no request
    # may match it (nor be a 500); the system check names the setting.
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.MAESTRANO = {"METRICS": {"BASIC_AUTH": configured}}

    refused = client.get("/metrics", HTTP_AUTHORIZATION=basic_auth(*sent))

    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Basic")
    with pytest.raises(SystemCheckError, match=r"maestrano\.E037"):
        call_command("check")


@pytest.mark.django_db
def test_metrics_from_allowed_addresses_and_loopback_in_debug(client, settings):
    settings.MAESTRANO = {"METRICS": {"ALLOWED_ADDRESSES": ["10.1.0.0/16"]}}
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    settings.DEBUG = True
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    settings.MAESTRANO = {"METRICS": {"ALLOW_LOOPBACK_IN_DEBUG": False}}
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


# --- control characters ------------------------------------------------------------------

#: A request's value with a NUL, a terminal escape, a carriage return and a line feed.
HOSTILE = "cld\x00\x1b[2J\r\nFAKE ERROR forged line\u2028"
#: What no log line may hold raw (the tab aside).
RAW_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


class ExtrasFormatter(logging.Formatter):
    """A project's own plain format that also writes every ``extra=`` value as key=value."""

    STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record):
        extras = {k: v for k, v in record.__dict__.items() if k not in self.STANDARD}
        return super().format(record) + " " + " ".join(f"{k}={v}" for k, v in extras.items())


def console_handler(stream, *, json_output, formatter=None):
    """The console handler of ``logging_config`` (its filters and formatter), on ``stream``."""
    config = logging_config(json_output=json_output)
    spec = config["handlers"]["console"]
    handler = logging.StreamHandler(stream)
    for name in spec["filters"]:
        handler.addFilter(import_string(config["filters"][name]["()"])())
    main = config["formatters"]["main"]
    handler.setFormatter(
        formatter
        or (import_string(main["()"])() if "()" in main else logging.Formatter(main["format"]))
    )
    return handler


@pytest.fixture
def log_lines():
    """Everything logged during the test through the console handler of ``logging_config``
    (plain, plain with the extras written, JSON), each as the list of its lines."""
    outputs = {
        "plain": (io.StringIO(), {"json_output": False}),
        "extras": (io.StringIO(), {"json_output": False, "formatter": ExtrasFormatter()}),
        "json": (io.StringIO(), {"json_output": True}),
    }
    handlers = [console_handler(stream, **options) for stream, options in outputs.values()]
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)
    yield lambda: {
        name: stream.getvalue().split("\n")[:-1] for name, (stream, _) in outputs.items()
    }
    for handler in handlers:
        root.removeHandler(handler)


@pytest.mark.django_db
def test_control_characters_from_a_request_are_escaped_in_every_log_line(
    client, two_presets, log_lines
):
    hostile = quote(HOSTILE, safe="")
    platform = {"HTTP_AUTHORIZATION": basic_auth("app-1", "key-1")}

    client.delete(f"/maestrano/account/groups/{hostile}", **platform)
    client.delete(f"/maestrano/account/groups/cld-1/users/{hostile}", **platform)
    client.delete(
        f"/maestrano/account/groups/{hostile}", HTTP_AUTHORIZATION=basic_auth("app-1", "wrong")
    )

    lines = log_lines()
    extras = lines["extras"]
    assert [line for line in extras if "nothing to do" in line] == [
        AnyString(f"group={escape_control_characters(HOSTILE)}"),
        AnyString(f"uid={escape_control_characters(HOSTILE)}"),
    ]
    assert any("Refused platform call" in line and "\\x00\\x1b[2J\\r\\n" in line for line in extras)
    for name, output in lines.items():
        assert output, name
        assert [line for line in output if RAW_CONTROL.search(line)] == [], name
        assert not any(line.startswith("FAKE ERROR") for line in output), name
    assert all(json.loads(line) for line in lines["json"])


def test_a_traceback_keeps_its_lines_and_loses_its_control_characters(log_lines):
    try:
        raise ValueError(HOSTILE) from KeyError(HOSTILE)
    except ValueError:
        logging.getLogger("tests.ops").exception("Failed on %s", HOSTILE)

    plain = log_lines()["plain"]
    escaped = escape_control_characters(HOSTILE)
    assert plain[0].endswith("Failed on " + escaped)
    assert plain[1] == "KeyError: " + escape_control_characters(repr(HOSTILE))
    assert plain[-1] == "ValueError: " + escaped
    assert "Traceback (most recent call last):" in plain
    assert [line for line in plain if RAW_CONTROL.search(line)] == []
    assert not any(line.startswith("FAKE ERROR") for line in plain)


def test_a_note_on_an_exception_forges_no_line(log_lines):
    error = ValueError("refused")
    error.add_note(HOSTILE)
    try:
        raise error
    except ValueError:
        logging.getLogger("tests.ops").exception("Failed")

    plain = log_lines()["plain"]
    assert plain[-1] == escape_control_characters(HOSTILE)  # the note, on one line
    assert [line for line in plain if RAW_CONTROL.search(line)] == []
    assert not any(line.startswith("FAKE ERROR") for line in plain)


class AnyString(str):
    """Equal to any string that contains it."""

    def __eq__(self, other):
        return isinstance(other, str) and str(self) in other

    __hash__ = str.__hash__


@pytest.mark.django_db
def test_djangos_own_request_log_lines_carry_the_request_id(client, log_lines):
    """``django.request`` writes "Not Found: ..." after the middleware returned: the line
    still names the request, in every format."""
    response = client.get("/no-such-page/", HTTP_X_REQUEST_ID="req-404")

    assert response.status_code == 404
    lines = log_lines()
    [plain] = [line for line in lines["plain"] if "Not Found: /no-such-page/" in line]
    assert "[req-404]" in plain
    [entry] = [json.loads(line) for line in lines["json"] if "Not Found: /no-such-page/" in line]
    assert entry["request_id"] == "req-404"


#: In the example project with ``DEBUG`` on: a 404 for a path with a CR/LF through the test
#: client, a 500's traceback whose message has one (as ``django.request`` logs it), and the
#: development server's access line for such a path.
DJANGO_LOGS_WITH_DEBUG = r"""
import logging, sys, django
django.setup()
from django.test import Client
hostile = sys.argv[1].encode("ascii").decode("unicode_escape")  # no NUL in an argument
from urllib.parse import quote
print(Client().get("/no-such-page/" + quote(hostile, safe="")).status_code)
try:
    raise ValueError("Refused " + hostile)
except ValueError:
    logging.getLogger("django.request").error("Internal Server Error: %s", "/p", exc_info=True)
logging.getLogger("django.server").warning('"GET /%s HTTP/1.1" 404 0', hostile)
"""


def test_djangos_own_handlers_escape_control_characters_with_debug_on(tmp_path):
    """With ``DEBUG`` on, Django's console handler (``DEFAULT_LOGGING``) wrote ``django.*``
    records a second time, unescaped, and ``django.server`` fell back to ``logging``'s
    last-resort handler: each record is one escaped line of the project's format now."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not re.match(r"(DJANGO_SETTINGS_MODULE|DEBUG|SANDBOX_|MAESTRANO_|LOG_)", name)
    }
    result = run_python(
        ["-c", DJANGO_LOGS_WITH_DEBUG, HOSTILE.encode("unicode_escape").decode("ascii")],
        env={
            **environment,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "true",
            "VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        },
    )

    assert result.stdout.strip() == "404", result.stderr
    lines = result.stderr.split("\n")
    escaped = escape_control_characters(HOSTILE)
    [not_found] = [line for line in lines if "Not Found" in line]
    assert " WARNING django.request [" in not_found
    assert not_found.endswith(f"Not Found: /no-such-page/{escaped}")
    assert [line for line in lines if line.startswith("ValueError")] == [
        f"ValueError: Refused {escaped}"
    ]
    assert [line for line in lines if "HTTP/1.1" in line] == [
        AnyString(f'WARNING django.server [-]: "GET /{escaped} HTTP/1.1" 404 0')
    ]
    assert [line for line in lines if RAW_CONTROL.search(line)] == []
    assert not any(line.startswith("FAKE ERROR") for line in lines)
