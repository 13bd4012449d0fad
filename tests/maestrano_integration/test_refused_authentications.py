"""Refused HTTP basic authentications are limited per client address, on every endpoint
that takes basic credentials (metadata, account webhooks, Connec! notifications, metrics):
after ``MAESTRANO["AUTH_FAILURES"]["LIMIT"]`` refusals within ``WINDOW_SECONDS`` the
address is answered 429 with ``Retry-After``, the right credentials included, for
``WINDOW_SECONDS``. Over HTTP with the Django test client (``REMOTE_ADDR`` per request)."""

from __future__ import annotations

import base64
import json
import logging

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from maestrano_accounts.models import Company
from maestrano_integration.auth import forget_refused
from maestrano_sync.models import InboxEntry

pytestmark = pytest.mark.django_db

LIMIT = 4
STRANGER = "203.0.113.7"
NEIGHBOUR = "198.51.100.9"
PROXY = "10.0.0.2"
SCRAPER = ("prometheus", "scrape-secret")


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


RIGHT = basic("app-1", "key-1")
WRONG = basic("app-1", "guess-1")


@pytest.fixture(autouse=True)
def _limits(two_presets, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "AUTH_FAILURES": {"LIMIT": LIMIT, "WINDOW_SECONDS": 300},
        "METRICS": {"BASIC_AUTH": SCRAPER},
    }
    Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    yield
    for address in (STRANGER, NEIGHBOUR, PROXY, "2001:db8:1:2::/64"):
        forget_refused(address=address)


def metadata(client, auth: str, address: str = STRANGER, **headers):
    return client.get(
        "/maestrano/metadata", HTTP_AUTHORIZATION=auth, REMOTE_ADDR=address, **headers
    )


def cancel_group(client, auth: str, address: str = STRANGER):
    return client.delete(
        "/maestrano/account/groups/cld-9", HTTP_AUTHORIZATION=auth, REMOTE_ADDR=address
    )


def remove_member(client, auth: str, address: str = STRANGER):
    return client.delete(
        "/maestrano/account/groups/cld-9/users/usr-9", HTTP_AUTHORIZATION=auth, REMOTE_ADDR=address
    )


def notify(client, auth: str, address: str = STRANGER):
    body = json.dumps({"people": [{"id": "p-1", "group_id": "cld-1"}]})
    return client.post(
        "/maestrano/connec/notifications",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
        REMOTE_ADDR=address,
    )


def scrape(client, auth: str, address: str = STRANGER, **headers):
    return client.get("/metrics", HTTP_AUTHORIZATION=auth, REMOTE_ADDR=address, **headers)


ENDPOINTS = [metadata, cancel_group, remove_member, notify]


def test_after_the_limit_every_endpoint_answers_429_even_to_the_right_credentials(client):
    # Refusals count together whatever the endpoint (and a missing header is one).
    refused = [
        metadata(client, WRONG).status_code,
        cancel_group(client, WRONG).status_code,
        notify(client, "").status_code,
        remove_member(client, basic("acme-app", "acme-key")).status_code,  # another preset's
    ]
    assert refused == [401] * LIMIT

    for call in ENDPOINTS:
        answer = call(client, RIGHT)
        assert answer.status_code == 429, call.__name__
        assert answer["Content-Type"] == "application/json"
        assert "refused authentications" in answer.json()["error"]
        assert 299 <= int(answer["Retry-After"]) <= 300
    assert InboxEntry.objects.count() == 0  # the blocked notification stored nothing
    assert scrape(client, basic(*SCRAPER)).status_code == 429


def test_another_address_is_unaffected(client):
    for _ in range(LIMIT):
        assert metadata(client, WRONG).status_code == 401
    assert metadata(client, RIGHT).status_code == 429

    assert metadata(client, RIGHT, address=NEIGHBOUR).status_code == 200
    assert cancel_group(client, RIGHT, address=NEIGHBOUR).status_code == 200
    # Its own refusals are its own: answered 401, counted from zero.
    assert [metadata(client, WRONG, address=NEIGHBOUR).status_code for _ in range(LIMIT)] == [
        401
    ] * LIMIT
    assert metadata(client, RIGHT, address=NEIGHBOUR).status_code == 429


def test_the_block_ends_with_its_window_and_the_count_starts_again(client):
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        for _ in range(LIMIT):
            metadata(client, WRONG)
        blocked = metadata(client, RIGHT)
        assert blocked.status_code == 429
        assert blocked["Retry-After"] == "300"

        clock.shift(299)
        assert metadata(client, RIGHT)["Retry-After"] == "1"
        clock.shift(1)  # the cache entries have expired
        assert metadata(client, RIGHT).status_code == 200
        # A new window: LIMIT refusals again before the next block.
        assert [metadata(client, WRONG).status_code for _ in range(LIMIT)] == [401] * LIMIT
        assert metadata(client, RIGHT).status_code == 429


def test_a_refusals_window_starts_at_the_first_one(client):
    with time_machine.travel(1_800_000_000, tick=False) as clock:
        for _ in range(LIMIT - 1):
            metadata(client, WRONG)
        clock.shift(300)  # those refusals' window is over
        for _ in range(LIMIT - 1):
            assert metadata(client, WRONG).status_code == 401
        assert metadata(client, RIGHT).status_code == 200
        assert metadata(client, WRONG).status_code == 401
        assert metadata(client, RIGHT).status_code == 429


def test_the_right_credentials_are_never_counted(client):
    for _ in range(3 * LIMIT):
        assert metadata(client, RIGHT).status_code == 200
        assert cancel_group(client, RIGHT).status_code == 200
    # Nor do they clear the refusals: LIMIT - 1 refusals leave the address open ...
    for _ in range(LIMIT - 1):
        assert metadata(client, WRONG).status_code == 401
        assert metadata(client, RIGHT).status_code == 200
    # ... and the LIMIT-th closes it.
    assert metadata(client, WRONG).status_code == 401
    assert metadata(client, RIGHT).status_code == 429


def test_the_metrics_endpoint_counts_its_refusals_too(client):
    for _ in range(LIMIT):
        assert scrape(client, basic(SCRAPER[0], "wrong")).status_code == 401
    blocked = scrape(client, basic(*SCRAPER))
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    assert metadata(client, RIGHT).status_code == 429
    assert scrape(client, basic(*SCRAPER), address=NEIGHBOUR).status_code == 200


def test_behind_a_proxy_the_client_drf_num_proxies_names_is_counted(client, settings):
    # Every call comes from the proxy, which appends the address it saw to
    # X-Forwarded-For; REST_FRAMEWORK["NUM_PROXIES"] tells how many proxies there are.
    settings.REST_FRAMEWORK = {"NUM_PROXIES": 1}
    for _ in range(LIMIT):
        answer = metadata(client, WRONG, address=PROXY, HTTP_X_FORWARDED_FOR=STRANGER)
        assert answer.status_code == 401
    assert metadata(client, RIGHT, address=PROXY, HTTP_X_FORWARDED_FOR=STRANGER).status_code == 429
    # The platform, through the same proxy, is not blocked with the guesser.
    platform = metadata(client, RIGHT, address=PROXY, HTTP_X_FORWARDED_FOR=NEIGHBOUR)
    assert platform.status_code == 200


def test_a_forwarded_for_the_client_writes_itself_changes_nothing(client, settings):
    # Without NUM_PROXIES the header is not trusted at all ...
    for index in range(LIMIT):
        spoofed = f"192.0.2.{index + 1}"
        assert metadata(client, WRONG, HTTP_X_FORWARDED_FOR=spoofed).status_code == 401
    assert metadata(client, RIGHT, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    forget_refused(address=STRANGER)

    # ... and with it, only the entry the proxy appended counts.
    settings.REST_FRAMEWORK = {"NUM_PROXIES": 1}
    for index in range(LIMIT):
        chain = f"192.0.2.{index + 1}, {STRANGER}"
        answer = metadata(client, WRONG, address=PROXY, HTTP_X_FORWARDED_FOR=chain)
        assert answer.status_code == 401
    chain = f"192.0.2.99, {STRANGER}"
    assert metadata(client, RIGHT, address=PROXY, HTTP_X_FORWARDED_FOR=chain).status_code == 429


def test_the_metrics_allowed_addresses_follow_num_proxies(client, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "METRICS": {"ALLOWED_ADDRESSES": ["198.51.100.0/24"], "ALLOW_LOOPBACK_IN_DEBUG": False},
    }
    # Without NUM_PROXIES a forwarded address opens nothing.
    assert scrape(client, "", address=PROXY, HTTP_X_FORWARDED_FOR=NEIGHBOUR).status_code == 403
    settings.REST_FRAMEWORK = {"NUM_PROXIES": 1}
    assert scrape(client, "", address=PROXY, HTTP_X_FORWARDED_FOR=NEIGHBOUR).status_code == 200
    assert scrape(client, "", address=NEIGHBOUR, HTTP_X_FORWARDED_FOR=PROXY).status_code == 403


def test_an_ipv6_address_counts_with_its_64_network(client):
    for host in range(LIMIT):
        assert metadata(client, WRONG, address=f"2001:db8:1:2::{host + 1}").status_code == 401
    assert metadata(client, RIGHT, address="2001:db8:1:2:ffff::1").status_code == 429
    assert metadata(client, RIGHT, address="2001:db8:1:3::1").status_code == 200


def test_blocking_is_logged_once_with_the_address_and_never_the_credentials(client, caplog):
    caplog.set_level(logging.WARNING, logger="maestrano_integration.auth")
    for _ in range(LIMIT + 2):
        metadata(client, WRONG)
    metadata(client, RIGHT)

    [blocked] = [r for r in caplog.records if r.getMessage().startswith("Blocked")]
    assert blocked.levelno == logging.WARNING
    assert STRANGER in blocked.getMessage()
    logged = " ".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "guess-1" not in logged and "key-1" not in logged
    assert WRONG.split()[1] not in logged and RIGHT.split()[1] not in logged


def test_a_limit_of_zero_turns_it_off(client, settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "AUTH_FAILURES": {"LIMIT": 0}}
    for _ in range(30):
        assert metadata(client, WRONG).status_code == 401
    assert metadata(client, RIGHT).status_code == 200

    # Nothing was counted meanwhile: on again, the address has its whole allowance.
    settings.MAESTRANO = {**settings.MAESTRANO, "AUTH_FAILURES": {"LIMIT": LIMIT}}
    assert [metadata(client, WRONG).status_code for _ in range(LIMIT)] == [401] * LIMIT
    assert metadata(client, RIGHT).status_code == 429


def test_a_counting_cache_that_fails_blocks_nobody_and_authenticates_as_usual(client, settings):
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing answers
            "OPTIONS": {"socket_connect_timeout": 0.2},
        },
    }
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "AUTH_FAILURES": {"LIMIT": 1, "WINDOW_SECONDS": 300, "CACHE": "down"},
    }
    assert [metadata(client, WRONG).status_code for _ in range(3)] == [401] * 3
    assert metadata(client, RIGHT).status_code == 200

    # The cache back, the refusals made while it was down were not counted.
    settings.MAESTRANO = {**settings.MAESTRANO, "AUTH_FAILURES": {"LIMIT": LIMIT}}
    assert [metadata(client, WRONG).status_code for _ in range(LIMIT)] == [401] * LIMIT
    assert metadata(client, RIGHT).status_code == 429


@pytest.mark.parametrize(
    ("values", "check_id", "fragment"),
    [
        ({"CACHE": "nowhere"}, "E036", "CACHE must be an alias of CACHES"),
        ({"LIMIT": -1}, "E036", "LIMIT must be 0 (off) or more"),
        ({"WINDOW_SECONDS": 0}, "E036", "WINDOW_SECONDS must be above 0"),
        ({"LIMIT": "twenty"}, "E039", 'MAESTRANO["AUTH_FAILURES"]["LIMIT"] is \'twenty\''),
    ],
)
def test_a_bad_setting_fails_the_check_and_limits_nothing(
    client, settings, values, check_id, fragment
):
    settings.MAESTRANO = {**settings.MAESTRANO, "AUTH_FAILURES": values}
    with pytest.raises(SystemCheckError, match=rf"maestrano\.{check_id}") as caught:
        call_command("check", "--tag", "maestrano")
    assert fragment in str(caught.value)
    assert [metadata(client, WRONG).status_code for _ in range(LIMIT + 1)] == [401] * (LIMIT + 1)
    assert metadata(client, RIGHT).status_code == 200


def test_a_misspelt_key_is_reported(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "AUTH_FAILURES": {"LIMT": 5}}
    from django.core import checks

    messages = [m for m in checks.run_checks(tags=["maestrano"]) if m.id == "maestrano.W010"]
    assert any("'LIMT'" in m.msg and "'LIMIT'" in (m.hint or "") for m in messages)


@pytest.mark.parametrize(
    ("backend", "limit", "warned"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", 20, True),
        ("django.core.cache.backends.locmem.LocMemCache", 0, False),  # nothing counted
        ("django.core.cache.backends.filebased.FileBasedCache", 20, False),  # shared
    ],
)
def test_the_deploy_check_warns_when_each_process_counts_for_itself(
    settings, tmp_path, backend, limit, warned
):
    from django.core import checks

    cache = {"BACKEND": backend, "LOCATION": str(tmp_path)}
    settings.CACHES = {**settings.CACHES, "refusals": cache}
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "AUTH_FAILURES": {"LIMIT": limit, "CACHE": "refusals"},
    }
    messages = checks.run_checks(tags=["maestrano"], include_deployment_checks=True)
    found = [m for m in messages if m.id == "maestrano.W041"]
    assert bool(found) is warned
    assert not [m for m in checks.run_checks(tags=["maestrano"]) if m.id == "maestrano.W041"]
