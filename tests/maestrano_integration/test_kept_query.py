"""``maestrano_integration.kept_query.KeptQuery`` finds what the queryset it keeps finds: the
same instances with the same converted values (dates, booleans, JSON), ``select_related``
objects attached without another query, one statement per call whatever the values; a
parameter that cannot be kept is refused with a clear error. ``KeptUpdate`` writes what
``QuerySet.update`` writes, to the matching rows only."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Person
from maestrano_accounts.models import Company, Membership, PlatformIdentity
from maestrano_integration.kept_query import KeptQuery, KeptUpdate

pytestmark = pytest.mark.django_db(transaction=True)

MEMBERSHIP = KeptQuery(
    Membership,
    lambda preset, group_uid, uid: Membership.objects.select_related("company", "user").filter(
        company__preset=preset,
        company__group_uid=group_uid,
        user__maestrano_identities__preset=preset,
        user__maestrano_identities__uid=uid,
    ),
)


def _member(*, group_uid: str, uid: str, active: bool = True) -> Membership:
    company = Company.objects.create(
        preset="maestrano",
        group_uid=group_uid,
        name=f"Company {group_uid}",
        free_trial_end_at=timezone.now() + datetime.timedelta(days=3),
        has_credit_card=True,
    )
    user = get_user_model().objects.create_user(username=uid, email=f"{uid}@example.com")
    PlatformIdentity.objects.create(
        user=user, preset="maestrano", uid=uid, extra_data={"nested": [1, "two", None]}
    )
    return Membership.objects.create(user=user, company=company, role="Admin", is_active=active)


def _values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_same_instances_as_the_queryset_with_related_objects_and_one_query():
    first = _member(group_uid="cld-1", uid="usr-1")
    _member(group_uid="cld-2", uid="usr-2", active=False)

    for group_uid, uid in (("cld-1", "usr-1"), ("cld-2", "usr-2")):
        expected = Membership.objects.select_related("company", "user").get(
            company__group_uid=group_uid
        )
        with CaptureQueriesContext(connection) as captured:
            found = MEMBERSHIP.first(preset="maestrano", group_uid=group_uid, uid=uid)
            company, user = found.company, found.user
        assert len(captured.captured_queries) == 1
        assert _values(found) == _values(expected)
        assert _values(company) == _values(expected.company)
        assert _values(user) == _values(expected.user)
        # Converted as the ORM converts them, not the database's raw values.
        assert isinstance(found.is_active, bool)
        assert isinstance(company.free_trial_end_at, datetime.datetime)
        assert company.has_credit_card is True
        assert found._state.adding is False and found._state.db == "default"
    assert first.pk == MEMBERSHIP.first(preset="maestrano", group_uid="cld-1", uid="usr-1").pk


def test_no_row_and_values_are_parameters_not_sql():
    _member(group_uid="cld-1", uid="usr-1")
    assert MEMBERSHIP.first(preset="maestrano", group_uid="cld-1", uid="usr-2") is None
    assert MEMBERSHIP.first(preset="other", group_uid="cld-1", uid="usr-1") is None
    hostile = "x' OR '1'='1"
    assert MEMBERSHIP.first(preset=hostile, group_uid=hostile, uid=hostile) is None
    assert Membership.objects.count() == 1


def test_json_values_and_several_rows_in_the_querysets_order():
    for index in range(3):
        _member(group_uid=f"cld-{index}", uid=f"usr-{index}")
    identities = KeptQuery(
        PlatformIdentity,
        lambda preset: PlatformIdentity.objects.filter(preset=preset).order_by("-uid"),
    )
    for _ in range(3):  # converted the same way on the runs after the one that compiled
        found = list(identities.iterator(preset="maestrano"))
        assert [i.uid for i in found] == ["usr-2", "usr-1", "usr-0"]
        assert found[0].extra_data == {"nested": [1, "two", None]}
        assert isinstance(found[0].created_at, datetime.datetime)


def test_each_thread_compiles_on_its_own_connection():
    _member(group_uid="cld-1", uid="usr-1")
    seen: list[object] = []

    def read() -> None:
        try:
            seen.append(MEMBERSHIP.first(preset="maestrano", group_uid="cld-1", uid="usr-1").pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 3 and len(set(seen)) == 1


def test_a_value_the_lookup_transforms_is_refused():
    transformed = KeptQuery(Person, lambda name: Person.objects.filter(last_name__icontains=name))
    with pytest.raises(ValueError, match="do not reach the SQL unchanged"):
        transformed.first(name="Smith")


def test_a_queryset_of_another_model_is_refused():
    mismatched = KeptQuery(Person, lambda uid: PlatformIdentity.objects.filter(uid=uid))
    with pytest.raises(ValueError, match="a queryset of PlatformIdentity, not of Person"):
        mismatched.first(uid="usr-1")


def test_the_values_must_be_the_builders_parameters():
    with pytest.raises(TypeError, match="expected the values"):
        MEMBERSHIP.first(preset="maestrano", group_uid="cld-1")


LOGIN = KeptUpdate(
    PlatformIdentity, fields=("email", "extra_data", "last_login_at"), where=("preset", "uid")
)


def test_an_update_writes_what_queryset_update_writes_to_the_matching_row_only():
    _member(group_uid="cld-1", uid="usr-1")
    _member(group_uid="cld-2", uid="usr-2")
    moment = timezone.now().replace(microsecond=123456)
    values = {
        "email": "new'; DROP TABLE x; --@example.com",
        "extra_data": {"ünïcode": "✓", "list": [1, 2.5, None, True], "empty": {}},
        "last_login_at": moment,
    }
    with CaptureQueriesContext(connection) as captured:
        updated = LOGIN.run(where={"preset": "maestrano", "uid": "usr-1"}, values=values)
    assert updated == 1 and len(captured.captured_queries) == 1
    PlatformIdentity.objects.filter(uid="usr-2").update(**values)
    kept, orm = (PlatformIdentity.objects.get(uid=uid) for uid in ("usr-1", "usr-2"))
    for name, value in values.items():
        assert getattr(kept, name) == getattr(orm, name) == value
    assert LOGIN.run(where={"preset": "maestrano", "uid": "usr-9"}, values=values) == 0
    assert PlatformIdentity.objects.filter(email=values["email"]).count() == 2


LAPSED = KeptUpdate(
    PlatformIdentity,
    fields=("email",),
    where=("preset",),
    unset_or_before=("last_login_at",),
)


def test_unset_or_before_updates_the_rows_the_orms_or_of_isnull_and_lt_updates():
    """``unset_or_before``: the rows whose column is NULL or less than the value given (a
    lapsed lease), not those equal to it or after; as ``Q(isnull) | Q(lt)`` finds them."""
    moment = timezone.now()
    stamps = {
        "usr-unset": None,
        "usr-before": moment - datetime.timedelta(microseconds=1),
        "usr-same": moment,
        "usr-after": moment + datetime.timedelta(seconds=5),
    }
    for uid, stamp in stamps.items():
        _member(group_uid=f"cld-{uid}", uid=uid)
        PlatformIdentity.objects.filter(uid=uid).update(last_login_at=stamp)
    expected = set(
        PlatformIdentity.objects.filter(
            Q(last_login_at__isnull=True) | Q(last_login_at__lt=moment), preset="maestrano"
        ).values_list("uid", flat=True)
    )
    updated = LAPSED.run(
        where={"preset": "maestrano", "last_login_at": moment},
        values={"email": "taken@example.com"},
    )
    taken = set(
        PlatformIdentity.objects.filter(email="taken@example.com").values_list("uid", flat=True)
    )
    assert taken == expected == {"usr-unset", "usr-before"}
    assert updated == 2


def test_an_update_of_a_relation_that_is_no_column_is_refused():
    with pytest.raises(ValueError, match="is not a column"):
        KeptUpdate(Company, fields=("memberships",), where=("group_uid",))


LAST_LOGIN = KeptUpdate(get_user_model(), fields=("last_login",), where=("id",))


def test_writes_go_together_in_one_statement_on_postgresql():
    first = _member(group_uid="cld-1", uid="usr-1")
    _member(group_uid="cld-2", uid="usr-2")
    moment = timezone.now().replace(microsecond=654321)
    identity = LOGIN.prepare(
        where={"preset": "maestrano", "uid": "usr-1"},
        values={"email": "after@example.com", "extra_data": {"k": "v"}, "last_login_at": moment},
    )
    user = LAST_LOGIN.prepare(where={"id": first.user.pk}, values={"last_login": moment})

    with CaptureQueriesContext(connection) as captured:
        updated = user.run_after(identity)

    assert updated == 1  # the rows of the last write
    statements = len(captured.captured_queries)
    assert statements == (1 if connection.vendor == "postgresql" else 2)
    written = PlatformIdentity.objects.get(uid="usr-1")
    assert (written.email, written.extra_data, written.last_login_at) == (
        "after@example.com",
        {"k": "v"},
        moment,
    )
    assert get_user_model().objects.get(pk=first.user.pk).last_login == moment
    untouched = PlatformIdentity.objects.get(uid="usr-2")
    assert untouched.email == "" and untouched.last_login_at is None


def test_a_write_before_that_matches_nothing_leaves_the_last_one_whole():
    member = _member(group_uid="cld-1", uid="usr-1")
    moment = timezone.now().replace(microsecond=0)
    nothing = LOGIN.prepare(
        where={"preset": "maestrano", "uid": "usr-9"},
        values={"email": "x@example.com", "extra_data": {}, "last_login_at": moment},
    )
    user = LAST_LOGIN.prepare(where={"id": member.user.pk}, values={"last_login": moment})

    assert user.run_after(nothing) == 1
    assert get_user_model().objects.get(pk=member.user.pk).last_login == moment
    assert not PlatformIdentity.objects.filter(email="x@example.com").exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_an_expression_returned_by_the_statement_runs_with_it():
    member = _member(group_uid="cld-1", uid="usr-1")
    user = LAST_LOGIN.prepare(where={"id": member.user.pk}, values={"last_login": timezone.now()})

    with CaptureQueriesContext(connection) as captured:
        assert user.run(returning="set_config('application_name', 'kept-test', false)") == 1

    assert captured.captured_queries[0]["sql"].endswith(
        "RETURNING set_config('application_name', 'kept-test', false)"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('application_name')")
        assert cursor.fetchone()[0] == "kept-test"
        cursor.execute("RESET application_name")
