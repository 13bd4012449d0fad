"""Every login writes the user's ``last_login``, as Django's own receiver does
(maestrano_accounts.last_login), whatever the project connects around it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import update_last_login as django_update_last_login
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maestrano_accounts import last_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user(
        username="lena", email="lena@example.com", password="a long enough password 42"
    )


def stored_last_login(user) -> dt.datetime | None:
    return get_user_model().objects.get(pk=user.pk).last_login


def user_writes(captured) -> list[str]:
    table = get_user_model()._meta.db_table
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith(f'UPDATE "{table}"')]


def is_kept_update(sql: str) -> bool:
    """Whether ``sql`` is the kept ``UPDATE`` of last_login alone, not ``save()``'s (the ORM
    names the key column with its table: ``WHERE "table"."id" = ...``)."""
    return bool(re.fullmatch(r'UPDATE "\w+" SET "last_login" = .+ WHERE "id" = .+', sql))


def test_the_app_takes_djangos_place_under_djangos_dispatch_uid():
    # Django's receiver is gone and this app's is connected once, under the same uid.
    assert not user_logged_in.disconnect(django_update_last_login)
    assert user_logged_in.disconnect(dispatch_uid=last_login.DISPATCH_UID)
    assert not user_logged_in.disconnect(dispatch_uid=last_login.DISPATCH_UID)
    user_logged_in.connect(last_login.update_last_login, dispatch_uid=last_login.DISPATCH_UID)
    assert not last_login.take_over_django_receiver()  # nothing of Django's left to take over


def test_a_projects_own_receiver_under_djangos_uid_is_left_in_place(client, user):
    calls = []

    def own(sender, user, **kwargs):
        calls.append(user.pk)

    user_logged_in.disconnect(dispatch_uid=last_login.DISPATCH_UID)
    user_logged_in.connect(own, dispatch_uid=last_login.DISPATCH_UID, weak=False)
    try:
        assert not last_login.take_over_django_receiver()
        client.force_login(user)
    finally:
        user_logged_in.disconnect(dispatch_uid=last_login.DISPATCH_UID)
        user_logged_in.connect(last_login.update_last_login, dispatch_uid=last_login.DISPATCH_UID)

    assert calls == [user.pk]
    assert stored_last_login(user) is None


def test_djangos_receiver_connected_again_is_taken_over_again(client, user):
    user_logged_in.disconnect(dispatch_uid=last_login.DISPATCH_UID)
    user_logged_in.connect(django_update_last_login, dispatch_uid=last_login.DISPATCH_UID)
    try:
        assert last_login.take_over_django_receiver()
        with CaptureQueriesContext(connection) as captured:
            client.force_login(user)
    finally:
        user_logged_in.disconnect(dispatch_uid=last_login.DISPATCH_UID)
        user_logged_in.connect(last_login.update_last_login, dispatch_uid=last_login.DISPATCH_UID)

    (write,) = user_writes(captured)
    assert is_kept_update(write)


def test_a_login_writes_last_login_with_one_statement(client, user):
    started = timezone.now()

    with CaptureQueriesContext(connection) as captured:
        client.force_login(user)

    assert stored_last_login(user) >= started
    (write,) = user_writes(captured)
    assert is_kept_update(write)


def test_the_logged_in_instance_carries_the_time_written(rf, user):
    request = rf.get("/")
    request.session = SessionStore()
    user.backend = "django.contrib.auth.backends.ModelBackend"
    login(request, user)

    assert user.last_login is not None
    assert stored_last_login(user) == user.last_login


def test_a_project_that_disconnects_it_the_django_way_stops_the_writes(client, user):
    user_logged_in.disconnect(dispatch_uid="update_last_login")
    try:
        client.force_login(user)
    finally:
        user_logged_in.connect(last_login.update_last_login, dispatch_uid=last_login.DISPATCH_UID)

    assert stored_last_login(user) is None


@pytest.mark.parametrize("signal", [pre_save, post_save], ids=["pre_save", "post_save"])
def test_receivers_of_the_users_saves_still_see_the_write(client, user, signal):
    seen = []

    def receiver(sender, instance, update_fields=None, **kwargs):
        seen.append((instance.pk, set(update_fields or ())))

    signal.connect(receiver, sender=get_user_model(), weak=False, dispatch_uid="test-saves")
    try:
        client.force_login(user)
    finally:
        signal.disconnect(sender=get_user_model(), dispatch_uid="test-saves")

    assert seen == [(user.pk, {"last_login"})]
    assert stored_last_login(user) is not None


def test_a_save_of_the_projects_own_still_runs(client, user, monkeypatch):
    model = get_user_model()
    saves = []
    original = model.save

    def save(self, *args, **kwargs):
        saves.append(kwargs.get("update_fields"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(model, "save", save)

    client.force_login(user)

    assert saves == [["last_login"]]
    assert stored_last_login(user) is not None


def test_a_user_whose_row_is_gone_fails_as_under_djangos_receiver(user):
    gone = get_user_model().objects.get(pk=user.pk)
    get_user_model().objects.filter(pk=user.pk).delete()

    for receiver in (last_login.update_last_login, django_update_last_login):
        with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
            receiver(sender=type(gone), user=gone)
