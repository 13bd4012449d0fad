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
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from maestrano_accounts.models import Company, Membership, PlatformIdentity
from maestrano_sync.models import InboxEntry
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
                "include-operation-id": [
                    "connec_notifications",
                    "create_bill",
                    "create_recurring_bill",
                    "connec_batch",
                    "update_connec_company",
                    "write_connec_company",
                    *(
                        f"{verb}_connec_{entity}"
                        for verb in ("create", "update")
                        for entity in ("organizations", "people", "items", "invoices")
                    ),
                ],
                "phases": {"coverage": {"enabled": False}},
            },
            {
                # `$filter` and `$orderby` are expressions the schema describes in words:
                # a generated one may not parse (a 400 that says why, never a guess).
                "include-operation-id-regex": "^list_connec_",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "400", "401", "404", "429"]
                    }
                },
            },
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
#: The sandbox has twenty-seven operations: fewer examples each keep its run short.
SANDBOX_MAX_EXAMPLES = 6

#: Requests sent per operation and answers per status class, printed at the end of the
#: session (``-rA`` / ``-s``).
SENT: Counter[str] = Counter()
STATUSES: Counter[str] = Counter()
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
    records: dict[str, str] = field(default_factory=dict)


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
        # schemathesis sends wrong credentials with many examples and wants each refused
        # with a 401: the 429 after too many from one address has its own tests
        # (tests/maestrano_integration/test_refused_authentications.py).
        "AUTH_FAILURES": {"LIMIT": 0},
    }
    company = Company.objects.create(preset="maestrano", group_uid="cld-1", name="Fuzz Co")
    Membership.objects.create(user=platform_user("usr-1", preset="maestrano"), company=company)
    return LiveApp(
        url=live_server.url,
        authorization="Basic " + base64.b64encode(b"app-fuzz:key-fuzz").decode(),
    )


def keep_the_transport_host(case) -> None:
    """A generated header named ``Host`` is dropped: the host is the transport's, and a
    forged one is refused by Django's ``ALLOWED_HOSTS`` check before any API code runs
    (``400 {"detail": ...}``, the ``handler400`` of ``tests/test_bad_request.py``); a
    schema's operation cannot document that answer."""
    for name in [name for name in (case.headers or {}) if name.lower() == "host"]:
        del case.headers[name]


@pytest.mark.django_db(transaction=True)
@APP_SCHEMA.parametrize()
@FUZZ_SETTINGS
def test_the_app_answers_every_request_as_its_schema_says(case, app_under_fuzz):
    before = app_state()

    keep_the_transport_host(case)
    headers = {"Authorization": app_under_fuzz.authorization}
    response = case.call(base_url=app_under_fuzz.url, headers=headers)
    SENT[f"{case.method} {case.path}"] += 1
    STATUSES[f"{response.status_code // 100}xx"] += 1

    assert response.status_code < 500, response.text
    case.validate_response(response, headers=headers)
    if response.status_code >= 400:
        assert app_state() == before, f"{response.status_code} answer changed the database"


SANDBOX_SCHEMA = schemathesis.openapi.from_path(
    ROOT / "docs" / "openapi" / "sandbox.yaml", config=CONFIG
)


def sandbox_state() -> list:
    from maestrano_sandbox.models import (
        Bill,
        ConnecExternalId,
        ConnecRecord,
        NotificationDelivery,
        RecurringBill,
    )

    return [
        list(model.objects.order_by("pk").values())
        for model in (Bill, RecurringBill, ConnecRecord, ConnecExternalId, NotificationDelivery)
    ]


@pytest.fixture
def sandbox_under_fuzz(live_server, hub_group, settings):
    """The sandbox on a live server; the app ``app-a`` and its group ``cld-1`` (shared with
    ``app-b``: a Connec! write stores a notification for it)."""
    from maestrano_sandbox.models import RegisteredApp

    # Notifications are stored, not sent: no thread changes the database between checks.
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {**settings.MAESTRANO_SANDBOX["NOTIFICATIONS"], "BACKGROUND": False},
    }
    app = RegisteredApp.objects.get(api_id="app-a")
    token = base64.b64encode(f"{app.api_id}:{app.api_key}".encode()).decode()
    return LiveApp(
        url=live_server.url, authorization=f"Basic {token}", records=seed_connec_records()
    )


def seed_connec_records() -> dict[str, str]:
    """One record of each Connec! entity in ``cld-1``, written as the sandbox: ``{entity: id}``."""
    from maestrano_sandbox.connec.api import Operation, run_and_notify

    fields = {
        "organizations": {"name": "Acme Corp", "email": {"address": "info@acme.example"}},
        "people": {"first_name": "Ada", "last_name": "Lovelace"},
        "items": {"code": "IT1", "name": "Widget"},
        "invoices": {"type": "CUSTOMER", "lines": [{"description": "One"}]},
    }
    return {
        entity: str(
            run_and_notify(
                Operation(method="POST", group_uid="cld-1", entity=entity, body={entity: data}),
                app=None,
            )
            .changed[0]
            .uid
        )
        for entity, data in fields.items()
    }


def aim_at_the_seeded_records(case, records: dict[str, str]) -> None:
    """Connec! calls go to ``cld-1`` and its records: a random group or id is a 404 that
    reaches no further (tested in tests/sandbox); the query and body stay generated."""
    parameters = case.path_parameters or {}
    if "group_id" in parameters:
        parameters["group_id"] = "cld-1"
    if "id" in parameters:
        parameters["id"] = records[case.path.split("/")[-2]]


@pytest.mark.django_db(transaction=True, databases="__all__")
@SANDBOX_SCHEMA.parametrize()
@settings(FUZZ_SETTINGS, max_examples=SANDBOX_MAX_EXAMPLES)
def test_the_sandbox_apis_answer_as_their_schema_says(case, sandbox_under_fuzz):
    aim_at_the_seeded_records(case, sandbox_under_fuzz.records)
    before = sandbox_state()

    keep_the_transport_host(case)
    headers = {"Authorization": sandbox_under_fuzz.authorization}
    response = case.call(base_url=sandbox_under_fuzz.url, headers=headers)
    SENT[f"{case.method} {case.path}"] += 1
    STATUSES[f"{response.status_code // 100}xx"] += 1

    assert response.status_code < 500, response.text
    # The sandbox's creates are lenient as the platform is: form fields are strings
    # ("100" is a price) and an empty or null optional field is absent, so a request
    # outside the schema may still be accepted; a batch answers each bad op in its
    # results (200). Every other check applies.
    # A Connec! read ignores query parameters it does not know, as Connec! does.
    lenient = (
        [negative_data_rejection]
        if case.method == "POST" or (case.method == "GET" and "/connec/" in case.path)
        else []
    )
    case.validate_response(response, headers=headers, excluded_checks=lenient)
    if response.status_code >= 400:
        assert sandbox_state() == before, f"{response.status_code} answer changed the database"


@pytest.fixture(scope="session", autouse=True)
def _report_sent():
    yield
    if SENT:
        print("\nschemathesis requests per operation:", dict(SENT), "total", sum(SENT.values()))
        print("answers by status class:", dict(sorted(STATUSES.items())))
