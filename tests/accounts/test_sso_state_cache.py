"""The SSO replay cache and login tickets in a cache (``MAESTRANO["SSO_STATE_CACHE"]``).

The recipe of docs/deploy.md keeps them in Redis: logins through the Django test
client against a real Redis (skipped locally when it is down, failed on CI), the
race of two requests for one assertion or one ticket with threads (exactly one
wins, with Redis and with Django's local-memory cache), expiry, and the settings
refused with a clear error.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
from collections.abc import Callable
from importlib import import_module
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import time_machine
from django.conf import settings as settings_module
from django.contrib.sessions.backends.base import UpdateError
from django.core import checks
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from maestrano_accounts import sso_state
from maestrano_accounts.models import Membership, SsoLoginTicket, UsedAssertion
from maestrano_integration.conf import get_preset, maestrano_settings
from maestrano_integration.saml import SamlValidationError
from tests.accounts.test_sso_queries import ATTRIBUTES, log_in, signed_response
from tests.conftest import preset_values
from tests.helpers.worker import redis_url, require_redis

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 8


def redis_cache(backend: str = "maestrano_integration.cache.RedisCache") -> dict[str, str]:
    """Redis through the backend of the recipe (Django's, reusing its client) or ``backend``."""
    url = redis_url()
    require_redis(url)
    return {
        "BACKEND": backend,
        "LOCATION": url,
        # A prefix of its own: other tests and sessions may share this Redis database.
        "KEY_PREFIX": f"sso-state-test-{secrets.token_hex(6)}",
    }


def local_memory_cache() -> dict[str, str]:
    return {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": f"sso-state-{secrets.token_hex(4)}",
    }


def django_redis_cache() -> dict[str, str]:
    return redis_cache("django.core.cache.backends.redis.RedisCache")


CACHES = {
    "redis": redis_cache,
    "django-redis": django_redis_cache,
    "local-memory": local_memory_cache,
}


def configure(settings, *, cache: dict[str, str] | None, state_cache: object = "default"):
    settings.CACHES = {"default": cache or local_memory_cache()}
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {"maestrano": preset_values(api_id="app-q", api_key="key-q")},
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
        "SSO_STATE_CACHE": state_cache,
    }
    return get_preset("maestrano")


@pytest.fixture
def redis_preset(settings):
    """The production recipe: SSO state and sessions in Redis."""
    settings.SESSION_ENGINE = "maestrano_accounts.cache_session_store"
    return configure(settings, cache=redis_cache())


# --- over HTTP, with Redis ---------------------------------------------------------------------


def test_a_login_through_redis_writes_no_sso_rows(client, redis_preset):
    assert log_in(client, redis_preset).status_code == 302
    assert log_in(client, redis_preset).status_code == 302

    assert client.session["_auth_user_id"]
    assert (UsedAssertion.objects.count(), SsoLoginTicket.objects.count()) == (0, 0)


def test_a_replayed_response_is_refused_through_redis(client, redis_preset, caplog):
    response = signed_response(redis_preset, ATTRIBUTES)
    first = client.post(redis_preset.consume_path, {"SAMLResponse": response})
    assert first.status_code == 303

    again = client.post(redis_preset.consume_path, {"SAMLResponse": response})

    assert again.status_code == 400
    assert [record.reason for record in caplog.records if hasattr(record, "reason")] == [
        "replayed_assertion"
    ]


def test_a_member_removed_before_the_completion_stays_removed_through_redis(
    client, redis_preset, caplog
):
    # The ticket keeps when its assertion was accepted (docs/protocol.md, 'Account webhooks').
    assert log_in(client, redis_preset).status_code == 302
    accepted = client.post(
        redis_preset.consume_path, {"SAMLResponse": signed_response(redis_preset, ATTRIBUTES)}
    )
    removal = "Basic " + base64.b64encode(b"app-q:key-q").decode()
    assert (
        client.delete(
            "/maestrano/account/groups/cld-q1/users/usr-q1", HTTP_AUTHORIZATION=removal
        ).status_code
        == 200
    )

    assert client.get(accepted["Location"]).status_code == 403
    assert [record.reason for record in caplog.records if hasattr(record, "reason")] == [
        "removed_during_login"
    ]
    assert Membership.objects.get().is_active is False


def test_a_ticket_completes_only_once_through_redis(client, redis_preset):
    response = signed_response(redis_preset, ATTRIBUTES)
    answer = client.post(redis_preset.consume_path, {"SAMLResponse": response})
    assert client.get(answer["Location"]).status_code == 302
    # The completion view forgot the browser's nonce; the link is tried again with it.
    client.cookies[sso_state.BROWSER_NONCE_COOKIE] = answer.cookies[
        sso_state.BROWSER_NONCE_COOKIE
    ].value

    assert client.get(answer["Location"]).status_code == 400


def test_an_idp_initiated_ticket_from_redis_completes_only_in_the_posting_browser(
    client, redis_preset
):
    answer = client.post(
        redis_preset.consume_path, {"SAMLResponse": signed_response(redis_preset, ATTRIBUTES)}
    )

    other = Client().get(answer["Location"])

    assert other.status_code == 403
    # Refused tickets are used up all the same.
    assert client.get(answer["Location"]).status_code == 400


def test_an_expired_ticket_from_redis_is_refused(client, redis_preset):
    answer = client.post(
        redis_preset.consume_path, {"SAMLResponse": signed_response(redis_preset, ATTRIBUTES)}
    )
    later = dt.datetime.now(dt.UTC) + sso_state.LOGIN_TICKET_LIFETIME + dt.timedelta(seconds=1)

    with time_machine.travel(later, tick=False):
        refused = client.get(answer["Location"])

    assert refused.status_code == 400
    assert "_auth_user_id" not in client.session


def redis_commands(monkeypatch) -> list[str]:
    """The round trips this process makes to Redis from now on: a command's name, or the
    names of a pipeline's commands joined by ``+``."""
    sent: list[str] = []
    original = redis.Redis.execute_command
    original_pipeline = redis.client.Pipeline.execute

    def execute_command(self, *args, **options):
        sent.append(str(args[0]).upper())
        return original(self, *args, **options)

    def execute_pipeline(self, *args, **options):
        sent.append("+".join(str(command[0][0]).upper() for command in self.command_stack))
        return original_pipeline(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", execute_command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", execute_pipeline)
    return sent


def test_a_repeat_login_through_redis_takes_three_round_trips(client, redis_preset, monkeypatch):
    assert log_in(client, redis_preset).status_code == 302
    user_id = client.session["_auth_user_id"]
    sent = redis_commands(monkeypatch)

    assert log_in(client, redis_preset).status_code == 302

    # ACS: replay cache and ticket in one script; completion: the ticket taken (GETDEL)
    # with the session loaded (GET) in one round trip, the session written back only if it
    # still exists (SET XX).
    assert sent == ["EVALSHA", "GETDEL+GET", "SET"]
    assert client.session["_auth_user_id"] == user_id


def test_sessions_in_another_cache_are_read_on_their_own(
    client, redis_preset, settings, monkeypatch
):
    settings.CACHES = {**settings.CACHES, "sessions": redis_cache()}
    settings.SESSION_CACHE_ALIAS = "sessions"
    assert log_in(client, redis_preset).status_code == 302
    user_id = client.session["_auth_user_id"]
    sent = redis_commands(monkeypatch)

    assert log_in(client, redis_preset).status_code == 302

    assert sent == ["EVALSHA", "GETDEL", "GET", "SET"]
    assert client.session["_auth_user_id"] == user_id


def test_a_session_gone_from_redis_is_a_new_one_at_the_completion(client, redis_preset):
    assert log_in(client, redis_preset).status_code == 302
    old_key = client.session.session_key
    engine = import_module(settings_module.SESSION_ENGINE)
    engine.SessionStore(old_key).delete()  # expired, or logged out elsewhere

    assert log_in(client, redis_preset).status_code == 302

    assert client.session.session_key != old_key
    assert client.session["_auth_user_id"]
    assert not engine.SessionStore().exists(old_key)


def test_a_refused_replay_leaves_no_ticket_in_redis(client, redis_preset):
    response = signed_response(redis_preset, ATTRIBUTES)
    first = client.post(redis_preset.consume_path, {"SAMLResponse": response})
    assert first.status_code == 303
    cache = caches["default"]
    tickets = f"{cache.key_prefix}*{sso_state.CACHE_KEY_PREFIX}:ticket:*"
    redis_client = cache._cache.get_client()
    assert len(redis_client.keys(tickets)) == 1

    again = client.post(redis_preset.consume_path, {"SAMLResponse": response})

    assert again.status_code == 400
    assert len(redis_client.keys(tickets)) == 1
    assert client.get(first["Location"]).status_code == 302


def test_a_session_deleted_meanwhile_is_not_written_back_to_redis(client, redis_preset):
    assert log_in(client, redis_preset).status_code == 302
    key = client.session.session_key
    engine = import_module(settings_module.SESSION_ENGINE)
    in_request = engine.SessionStore(key)
    in_request["seen"] = True  # loaded, then changed by a request...
    engine.SessionStore(key).delete()  # ...while the user logs out elsewhere

    with pytest.raises(UpdateError):
        in_request.save()

    assert not engine.SessionStore().exists(key)
    assert "_auth_user_id" not in client.session


def test_a_session_in_redis_is_written_back_with_its_changes(client, redis_preset):
    assert log_in(client, redis_preset).status_code == 302
    key = client.session.session_key
    engine = import_module(settings_module.SESSION_ENGINE)
    in_request = engine.SessionStore(key)
    in_request["seen"] = True

    in_request.save()

    assert engine.SessionStore(key)["seen"] is True
    assert client.session.session_key == key


def test_a_logged_in_browser_logged_in_as_another_user_gets_a_new_session(client, redis_preset):
    assert log_in(client, redis_preset).status_code == 302
    first_key = client.session.session_key
    other = {**ATTRIBUTES, "uid": "usr-q2", "virtual_uid": "usr-q2.cld-q1", "email": "q2@e.com"}

    # Another platform user's IdP-initiated login is confirmed on a page first.
    asked = log_in(client, redis_preset, other)
    assert asked.status_code == 200
    confirmed = client.post(
        reverse("maestrano_accounts:sso-complete"), {"ticket": asked.context["ticket"]}
    )
    assert confirmed.status_code == 302

    assert client.session.session_key != first_key
    engine = import_module(settings_module.SESSION_ENGINE)
    assert not engine.SessionStore().exists(first_key)


@pytest.mark.parametrize("cache", list(CACHES))
def test_of_racing_posts_of_one_response_exactly_one_gets_a_ticket(settings, cache):
    preset = configure(settings, cache=CACHES[cache]())
    body = {"SAMLResponse": signed_response(preset, ATTRIBUTES)}

    statuses = race(lambda: Client().post(preset.consume_path, body).status_code)

    assert sorted(statuses) == [303] + [400] * (RACERS - 1)


# --- races, with threads ----------------------------------------------------------------------


def race(attempt: Callable[[], object]) -> list[object]:
    """Run ``attempt`` in RACERS threads released together; their results or exceptions."""
    barrier = threading.Barrier(RACERS)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome: object = attempt()
        except SamlValidationError as error:
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == RACERS
    return results


def winners(results: list[object]) -> list[object]:
    return [result for result in results if not isinstance(result, SamlValidationError)]


@pytest.mark.parametrize("cache", list(CACHES))
def test_of_racing_uses_of_one_assertion_exactly_one_is_accepted(settings, cache):
    preset = configure(settings, cache=CACHES[cache]())
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assertion_id = f"_{secrets.token_hex(16)}"

    results = race(
        lambda: sso_state.record_assertion_use(
            preset=preset, assertion_id=assertion_id, expires_at=expires_at
        )
    )

    assert len(winners(results)) == 1
    assert {error.reason for error in results if isinstance(error, SamlValidationError)} == {
        "replayed_assertion"
    }


@pytest.mark.parametrize("cache", list(CACHES))
def test_of_racing_redemptions_of_one_ticket_exactly_one_wins(client, settings, cache):
    preset = configure(settings, cache=CACHES[cache]())
    answer = client.post(preset.consume_path, {"SAMLResponse": signed_response(preset, ATTRIBUTES)})
    token = parse_qs(urlsplit(answer["Location"]).query)["ticket"][0]
    nonce = answer.cookies[sso_state.BROWSER_NONCE_COOKIE].value

    results = race(lambda: sso_state.redeem_login_ticket(token=token, browser_nonce=nonce))

    assert len(winners(results)) == 1
    assert winners(results)[0].attributes.uid == ATTRIBUTES["uid"]


# --- the setting ----------------------------------------------------------------------------


def errors_of(*, deploy: bool = False) -> set[str]:
    return {
        message.id
        for message in checks.run_checks(include_deployment_checks=deploy)
        if message.level >= checks.ERROR
    }


def test_an_unknown_cache_alias_is_refused_with_a_clear_error(settings):
    configure(settings, cache=None, state_cache="sessions")

    with pytest.raises(ImproperlyConfigured, match="alias of CACHES"):
        maestrano_settings.sso_state_cache()
    assert "maestrano.E022" in errors_of()


def test_a_value_that_is_no_alias_is_refused(settings):
    configure(settings, cache=None, state_cache=True)

    with pytest.raises(ImproperlyConfigured, match="None or an alias"):
        maestrano_settings.sso_state_cache()


@pytest.mark.parametrize(
    ("backend", "why"),
    [
        ("django.core.cache.backends.dummy.DummyCache", "stores nothing"),
        ("django.core.cache.backends.filebased.FileBasedCache", "not atomic"),
    ],
)
def test_caches_that_cannot_keep_the_state_are_refused(settings, tmp_path, backend, why):
    configure(settings, cache={"BACKEND": backend, "LOCATION": str(tmp_path)})

    with pytest.raises(ImproperlyConfigured, match=why):
        maestrano_settings.sso_state_cache()
    assert "maestrano.E022" in errors_of()


def test_a_local_memory_cache_fails_the_deployment_check(settings):
    configure(settings, cache=local_memory_cache())

    assert "maestrano.E022" not in errors_of()
    assert "maestrano.E023" in errors_of(deploy=True)


def test_without_the_setting_the_state_stays_in_the_database(client, settings):
    preset = configure(settings, cache=None, state_cache=None)

    assert log_in(client, preset).status_code == 302

    assert UsedAssertion.objects.count() == 1
