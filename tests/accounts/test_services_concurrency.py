"""Two first logins of a new group at the same moment create exactly one company (PostgreSQL).

The adapter (the adopter's extension point) makes both requests wait for each
other after they found no company and before they insert one, so the race is
certain rather than lucky: one insert wins, the other hits the unique
constraint, rolls back its savepoint and joins the winner's company.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from maestrano_accounts.adapter import DefaultAccountAdapter
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.signals import company_created
from tests.helpers.saml import obtain_saml_response, post_saml_response
from tests.helpers.sso_flow import complete

User = get_user_model()

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises writers (one lock per file): the race needs PostgreSQL",
)

_barrier = threading.Barrier(2, timeout=10)


class RaceAdapter(DefaultAccountAdapter):
    """Holds each new-company creation until two requests are in the same window."""

    def populate_company(self, company, *, preset, attributes):
        super().populate_company(company, preset=preset, attributes=attributes)
        if company.pk is None:
            _barrier.wait()


def _joined_concurrently(caplog) -> int:
    return sum("created by a concurrent login" in r.getMessage() for r in caplog.records)


def test_two_simultaneous_first_logins_create_one_company(platform, caplog):
    caplog.set_level(logging.INFO)
    _barrier.reset()
    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "ADAPTER": f"{__name__}.RaceAdapter",
    }
    created = []

    def receiver(sender, company, **kwargs):
        created.append(company.pk)

    company_created.connect(receiver, weak=False)
    try:
        browsers = [platform.session(), platform.session()]
        posts = [
            obtain_saml_response(platform, http, user_uid=uid, group_uid="cld-race", role=role)
            for http, uid, role in zip(
                browsers, ["usr-r1", "usr-r2"], ["Admin", "Member"], strict=True
            )
        ]
        consumes = [
            post_saml_response(http, post) for http, post in zip(browsers, posts, strict=True)
        ]

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(complete, browsers, consumes))
    finally:
        company_created.disconnect(receiver)

    assert [answer.status_code for answer in answers] == [302, 302]
    company = Company.objects.get()
    assert company.group_uid == "cld-race"
    assert sorted(User.objects.values_list("maestrano_identities__uid", flat=True)) == [
        "usr-r1",
        "usr-r2",
    ]
    assert Membership.objects.filter(company=company).count() == 2
    assert created == [company.pk]
    assert _joined_concurrently(caplog) == 1


def test_the_same_user_completing_twice_at_once_is_one_user(platform, caplog):
    caplog.set_level(logging.INFO)
    _barrier.reset()
    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "ADAPTER": f"{__name__}.RaceAdapter",
    }
    browsers = [platform.session(), platform.session()]
    posts = [
        obtain_saml_response(platform, http, user_uid="usr-twice", group_uid="cld-twice")
        for http in browsers
    ]
    consumes = [post_saml_response(http, post) for http, post in zip(browsers, posts, strict=True)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(complete, browsers, consumes))

    assert [answer.status_code for answer in answers] == [302, 302]
    assert (Company.objects.count(), User.objects.count(), Membership.objects.count()) == (1, 1, 1)
    assert _joined_concurrently(caplog) == 1
