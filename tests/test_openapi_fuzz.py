"""Schema fuzzing: schemathesis sends requests generated from the committed OpenAPI schemas
(docs/openapi/) to live servers, with valid credentials, and checks every answer.

For every generated request: no 5xx, the status, content type, headers and body are
those the schema documents, and a refused request (4xx) changed nothing in the
database. Example counts are bounded (``MAX_EXAMPLES`` per operation) so that the run
stays short on both databases; ``derandomize`` makes it the same run every time.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from accounts.models import Company, Membership, PlatformIdentity
from sync.models import InboxEntry
from tests.conftest import preset_values
from tests.helpers.users import platform_user

ROOT = Path(__file__).resolve().parent.parent
CONFIG = schemathesis.Config.from_dict(
    {
        # Strings a database can store: NUL and lone surrogates are refused (400) by
        # maestrano_integration.strict_input, tested on their own.
        "generation": {"allow-x00": False, "codec": "utf-8"},
        # The coverage phase tries every property of every entity of the notification
        # body (over a thousand requests): the fuzzing phase samples them instead.
        "operations": [
            {
                "include-operation-id": "connec_notifications",
                "phases": {"coverage": {"enabled": False}},
            }
        ],
        "checks": {
            # A request of the documented shape may still name an unknown group (404)
            # or records of several groups (422, the payload refused whole).
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "404", "422", "429"]}
        },
    }
)
APP_SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "openapi" / "app.yaml", config=CONFIG)
MAX_EXAMPLES = 30

#: Requests sent per operation, printed at the end of the session (``-rA`` / ``-s``).
SENT: Counter[str] = Counter()
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def app_state() -> list:
    """Every row a platform call may change, to compare before and after a refusal."""
    return [
        list(Company.objects.order_by("pk").values()),
        list(Membership.objects.order_by("pk").values()),
        list(PlatformIdentity.objects.order_by("pk").values()),
        list(InboxEntry.objects.order_by("pk").values_list("pk", "payload")),
    ]


@dataclass
class LiveApp:
    url: str
    authorization: str


@pytest.fixture
def app_under_fuzz(live_server, settings):
    """The app on a live server, with a company and a member the schema's examples name."""
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(
                api_id="app-fuzz", api_key="key-fuzz", app_host=live_server.url
            )
        },
    }
    company = Company.objects.create(preset="maestrano", group_uid="cld-1", name="Fuzz Co")
    Membership.objects.create(user=platform_user("usr-1", preset="maestrano"), company=company)
    return LiveApp(
        url=live_server.url,
        authorization="Basic " + base64.b64encode(b"app-fuzz:key-fuzz").decode(),
    )


@pytest.mark.django_db(transaction=True)
@APP_SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_the_app_answers_every_request_as_its_schema_says(case, app_under_fuzz):
    before = app_state()

    headers = {"Authorization": app_under_fuzz.authorization}
    response = case.call(base_url=app_under_fuzz.url, headers=headers)
    SENT[f"{case.method} {case.path}"] += 1

    assert response.status_code < 500, response.text
    case.validate_response(response, headers=headers)
    if response.status_code >= 400:
        assert app_state() == before, f"{response.status_code} answer changed the database"


@pytest.fixture(scope="session", autouse=True)
def _report_sent():
    yield
    if SENT:
        print("\nschemathesis requests per operation:", dict(SENT), "total", sum(SENT.values()))
