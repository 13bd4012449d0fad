"""AccountClient's transport rules: envelopes, typed errors, timeouts, which calls are retried.

The one place ``responses`` is used (unit tests of a client's HTTP rules);
``tests/accounts/test_billing*.py`` exercise the same client against the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses

from maestrano_integration.account import (
    AccountApiError,
    AccountAuthenticationError,
    AccountClient,
    AccountConnectionError,
    AccountGroup,
    AccountNotFoundError,
    AccountValidationError,
    Bill,
    RecurringBill,
)
from maestrano_integration.http import PlatformHTTPError
from tests.conftest import preset_values

API = "http://127.0.0.1:9/api/v1/account"


@pytest.fixture(autouse=True)
def _presets(settings):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "HTTP_TIMEOUT": 4.5,
        "HTTP_RETRIES": 2,
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1"),
            "acme-market": preset_values(
                api_id="acme-app", api_key="acme-key", api={"host": "http://acme.test"}
            ),
        },
    }


def envelope(data, *, success=True, errors=None):
    return {"success": success, "errors": errors or {}, "data": data}


BILL = {
    "object": "account_bill",
    "id": "bill-1",
    "group_id": "cld-1",
    "price_cents": 2000,
    "description": "100 SMS",
    "status": "submitted",
    "currency": "AUD",
    "units": "1.0",
    "created_at": "2026-01-02T03:04:05Z",
    "updated_at": "2026-01-02T03:04:05Z",
    "period_started_at": None,
    "period_ended_at": None,
}


@responses.activate
def test_list_sends_filters_with_suffixes_and_basic_auth_of_the_preset():
    responses.get(f"{API}/bills", json=envelope([BILL]))

    bills = AccountClient(preset="maestrano").list_bills(
        group_id="cld-1",
        created_at_after=datetime(2026, 1, 1, tzinfo=UTC),
        price_cents_greater_than=100,
    )

    assert bills == [Bill.from_api(BILL)]
    assert bills[0].price_cents == 2000
    assert bills[0].units == Decimal("1.0")
    assert bills[0].created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    request = responses.calls[0].request
    assert request.params == {
        "group_id": "cld-1",
        "created_at_after": "2026-01-01T00:00:00Z",
        "price_cents_greater_than": "100",
    }
    assert request.headers["Authorization"] == requests.auth._basic_auth_str("app-1", "key-1")
    assert request.req_kwargs["timeout"] == 4.5


@responses.activate
def test_each_preset_calls_its_own_host_with_its_own_credentials():
    responses.get("http://acme.test/api/v1/account/groups/cld-9", json=envelope({"id": "cld-9"}))

    group = AccountClient(preset="acme-market").retrieve_group("cld-9")

    assert group == AccountGroup(id="cld-9")
    assert responses.calls[0].request.headers["Authorization"] == requests.auth._basic_auth_str(
        "acme-app", "acme-key"
    )


@responses.activate
def test_create_recurring_bill_sends_only_given_fields_and_returns_the_typed_result():
    responses.post(
        f"{API}/recurring_bills",
        json=envelope(
            {
                "object": "account_recurring_bill",
                "id": "rbill-1",
                "group_id": "cld-1",
                "price_cents": 2900,
                "description": "Standard",
                "period": "Month",
                "frequency": 1,
                "status": "submitted",
                "currency": "USD",
                "start_date": "2026-02-01T00:00:00Z",
                "initial_cents": 0,
            }
        ),
        status=201,
    )

    bill = AccountClient().create_recurring_bill(
        group_id="cld-1",
        price_cents=2900,
        description="Standard",
        period="Month",
        start_date=datetime(2026, 2, 1, tzinfo=UTC),
        currency="USD",
    )

    assert isinstance(bill, RecurringBill)
    assert (bill.id, bill.status, bill.start_date) == (
        "rbill-1",
        "submitted",
        datetime(2026, 2, 1, tzinfo=UTC),
    )
    assert json.loads(responses.calls[0].request.body) == {
        "group_id": "cld-1",
        "price_cents": 2900,
        "description": "Standard",
        "period": "Month",
        "start_date": "2026-02-01T00:00:00Z",
        "currency": "USD",
    }


@responses.activate
def test_validation_errors_surface_as_typed_exception_with_the_platform_messages():
    errors = {"price_cents": ["must be greater than or equal to 0"], "currency": ["is invalid"]}
    responses.post(f"{API}/bills", json=envelope(None, success=False, errors=errors), status=422)

    with pytest.raises(AccountValidationError) as caught:
        AccountClient().create_bill(group_id="cld-1", price_cents=-1, description="x")

    error = caught.value
    assert isinstance(error, AccountApiError)
    assert isinstance(error, PlatformHTTPError)
    assert error.status == 422
    assert error.errors == errors
    assert error.messages == [
        "price_cents: must be greater than or equal to 0",
        "currency: is invalid",
    ]
    assert "must be greater than or equal to 0" in str(error)
    assert not error.is_transient


@responses.activate
def test_bad_credentials_raise_authentication_error_carrying_invalid_api_token():
    responses.get(
        f"{API}/groups",
        json=envelope(None, success=False, errors={"authentication": ["Invalid API token"]}),
        status=401,
    )

    with pytest.raises(AccountAuthenticationError) as caught:
        AccountClient().list_groups()

    assert caught.value.status == 401
    assert caught.value.errors == {"authentication": ["Invalid API token"]}
    assert len(responses.calls) == 1


@responses.activate
def test_unknown_id_raises_not_found():
    responses.get(
        f"{API}/bills/bill-404",
        json=envelope(None, success=False, errors={"id": ["not found"]}),
        status=404,
    )

    with pytest.raises(AccountNotFoundError) as caught:
        AccountClient().retrieve_bill("bill-404")

    assert caught.value.status == 404


@responses.activate
def test_get_is_retried_on_5xx_until_it_succeeds():
    responses.get(f"{API}/users", json=envelope(None, success=False), status=503)
    responses.get(f"{API}/users", json=envelope([{"id": "usr-1", "name": "Jo"}]))

    users = AccountClient().list_users()

    assert [user.id for user in users] == ["usr-1"]
    assert len(responses.calls) == 2


@responses.activate
def test_cancel_is_retried_on_5xx_and_gives_up_with_a_transient_error():
    responses.delete(f"{API}/recurring_bills/rbill-1", body="<html>bad gateway</html>", status=502)

    with pytest.raises(AccountApiError) as caught:
        AccountClient().cancel_recurring_bill("rbill-1")

    assert len(responses.calls) == 3  # the first call and HTTP_RETRIES=2 retries
    assert caught.value.status == 502
    assert caught.value.is_transient
    assert "bad gateway" in caught.value.body


@responses.activate
def test_create_is_never_retried_on_5xx():
    responses.post(f"{API}/bills", json=envelope(None, success=False), status=503)

    with pytest.raises(AccountApiError) as caught:
        AccountClient().create_bill(group_id="cld-1", price_cents=100, description="x")

    assert caught.value.status == 503
    assert len(responses.calls) == 1


@responses.activate
def test_a_timeout_is_a_typed_connection_error():
    responses.post(f"{API}/bills", body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(AccountConnectionError) as caught:
        AccountClient().create_bill(group_id="cld-1", price_cents=100, description="x")

    assert caught.value.status is None
    assert caught.value.is_transient
    assert len(responses.calls) == 1


@responses.activate
def test_success_false_in_a_200_is_an_error():
    responses.get(f"{API}/groups", json=envelope(None, success=False, errors={"base": ["nope"]}))

    with pytest.raises(AccountApiError, match="nope"):
        AccountClient().list_groups()


@pytest.mark.parametrize("object_id", ["", ".", ".."])
def test_an_id_that_names_no_resource_is_refused(object_id):
    with pytest.raises(ValueError):
        AccountClient().retrieve_bill(object_id)


@responses.activate
@pytest.mark.parametrize(
    ("object_id", "path"),
    [
        ("../groups", "bills/..%2Fgroups"),
        ("bill-1?group_id=cld-2#x", "bills/bill-1%3Fgroup_id%3Dcld-2%23x"),
    ],
)
def test_ids_cannot_escape_the_resource_path(object_id, path):
    responses.get(f"{API}/{path}", json=envelope(BILL))

    AccountClient().retrieve_bill(object_id)

    assert responses.calls[0].request.url == f"{API}/{path}"


class SilentServer:
    """A loopback TCP server that reads requests and never answers: a real read timeout."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.requests: list[bytes] = []
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self._connections.append(connection)
            connection.settimeout(2)
            with contextlib.suppress(OSError):
                self.requests.append(connection.recv(65536))

    def close(self) -> None:
        self.socket.close()
        for connection in self._connections:
            connection.close()


@pytest.fixture
def silent_platform(settings):
    server = SilentServer()
    settings.MAESTRANO = {
        "HTTP_TIMEOUT": 0.3,
        "HTTP_RETRIES": 1,
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1", api={"host": server.url})
        },
    }
    yield server
    server.close()


def test_a_create_that_timed_out_is_sent_exactly_once(silent_platform):
    with pytest.raises(AccountConnectionError) as caught:
        AccountClient().create_recurring_bill(group_id="cld-1", price_cents=100, description="x")

    assert [request.split(b" ")[0] for request in silent_platform.requests] == [b"POST"]
    assert caught.value.may_have_arrived  # the platform may have applied it


def test_a_create_whose_connection_was_refused_never_arrived(settings):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there
    settings.MAESTRANO = {
        "HTTP_RETRIES": 0,
        "PRESETS": {"maestrano": preset_values(api_id="app-1", api_key="key-1", api={"host": url})},
    }

    with pytest.raises(AccountConnectionError) as caught:
        AccountClient().create_bill(group_id="cld-1", price_cents=100, description="x")

    assert caught.value.may_have_arrived is False
    assert caught.value.is_transient


def test_a_read_that_timed_out_is_retried(silent_platform):
    with pytest.raises(AccountConnectionError):
        AccountClient().list_recurring_bills(group_id="cld-1")

    assert [request.split(b" ")[0] for request in silent_platform.requests] == [b"GET", b"GET"]


@responses.activate
def test_lists_follow_pagination_to_the_last_page():
    def page(data, offset, total):
        return {**envelope(data), "pagination": {"total": total, "limit": 2, "offset": offset}}

    responses.get(
        f"{API}/bills",
        json=page([BILL, {**BILL, "id": "bill-2"}], 0, 3),
        match=[responses.matchers.query_param_matcher({"group_id": "cld-1"})],
    )
    responses.get(
        f"{API}/bills",
        json=page([{**BILL, "id": "bill-3"}], 2, 3),
        match=[responses.matchers.query_param_matcher({"group_id": "cld-1", "offset": "2"})],
    )

    bills = AccountClient().list_bills(group_id="cld-1")

    assert [bill.id for bill in bills] == ["bill-1", "bill-2", "bill-3"]


@responses.activate
def test_an_explicit_limit_returns_a_single_page():
    responses.get(
        f"{API}/bills",
        json={**envelope([BILL]), "pagination": {"total": 5, "limit": 1, "offset": 0}},
    )

    assert len(AccountClient().list_bills(limit=1)) == 1
    assert len(responses.calls) == 1


# --- against the sandbox's Account API ---------------------------------------------------


@pytest.fixture
def sandbox_group(platform):
    platform.add_member(group_uid="cld-api", user_uid="usr-api", name="Ann", email="ann@x.test")
    return "cld-api"


def test_sandbox_bad_credentials_raise_the_typed_401_with_the_platform_message(platform):
    platform.configure(maestrano=platform.preset_values(api={"key": "wrong"}))

    with pytest.raises(AccountAuthenticationError) as caught:
        AccountClient().list_bills()

    assert caught.value.status == 401
    assert caught.value.errors == {"authentication": ["Invalid API token"]}


def test_sandbox_validation_errors_carry_the_platform_messages(platform, sandbox_group):
    with pytest.raises(AccountValidationError) as caught:
        AccountClient().create_recurring_bill(
            group_id="cld-unknown", price_cents=100, description="x", period="Fortnight"
        )

    assert caught.value.status == 422
    assert set(caught.value.errors) == {"group_id", "period"}
    assert any("cld-unknown" in message for message in caught.value.messages)


def test_sandbox_bill_lifecycle_and_read_only_directory(platform, sandbox_group):
    client = AccountClient()

    bill = client.create_bill(group_id=sandbox_group, price_cents=250, description="Pack")
    cancelled = client.cancel_bill(bill.id)

    assert client.retrieve_bill(bill.id) == cancelled
    assert cancelled.status == "cancelled"
    assert [b.id for b in client.list_bills(group_id=sandbox_group, status="cancelled")] == [
        bill.id
    ]
    assert client.list_bills(group_id=sandbox_group, price_cents_greater_than=250) == []
    with pytest.raises(AccountValidationError, match="cannot be cancelled"):
        client.cancel_bill(bill.id)
    with pytest.raises(AccountNotFoundError):
        client.retrieve_recurring_bill("rbill-nope")
    assert [group.id for group in client.list_groups()] == [sandbox_group]
    user = client.retrieve_user("usr-api")
    assert (user.name, user.email) == ("Ann", "ann@x.test")


def test_results_are_typed_from_the_json_and_sparse_answers_take_the_defaults():
    group = AccountGroup.from_api(
        {
            "id": "cld-1",
            "has_credit_card": "true",
            "free_trial_end_at": "2026-12-01T00:00:00Z",
            "extra": "kept",
        }
    )
    recurring = RecurringBill.from_api({"id": "rbill-1", "price_cents": "oops", "cycles": "3"})

    assert group.has_credit_card is True
    assert group.free_trial_end_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert (group.name, group.currency, group.raw["extra"]) == ("", "", "kept")
    assert (recurring.price_cents, recurring.period, recurring.frequency) == (0, "Month", 1)
    assert (recurring.cycles, recurring.initial_cents, recurring.start_date) == (3, 0, None)
