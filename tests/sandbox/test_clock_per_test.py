"""Each test's sandbox stamps its Connec! records from now (``maestrano_sandbox.testing.
platform_for_test``, the setup of the ``maestrano_platform`` fixture): the hub's clock never
goes back within a process, and a test that stored a record in the future (its clock moved
forward) left every later test's remote edits stamped after it, later than that test's own
local changes, so the conflict rule let the remote edit win. Over HTTP, on the live server."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import time_machine
from django.utils import timezone

from maestrano_sandbox.models import Group, RegisteredApp
from maestrano_sandbox.testing import platform_for_test


def _stamp_of_new_record(platform, name: str) -> dt.datetime:
    group, _ = Group.objects.get_or_create(name="Acme")
    group.apps.add(platform.app)
    answer = requests.post(
        f"{platform.connec_url}/api/v2/{group.uid}/organizations",
        json={"organizations": {"name": name}},
        auth=platform.auth,
        timeout=10,
    )
    assert answer.status_code in (200, 201), answer.text
    return dt.datetime.fromisoformat(answer.json()["organizations"]["updated_at"])


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_next_tests_platform_stamps_records_from_now(live_server, settings, sandbox_data_dir):
    # One test, its clock moved to 2030, stores a record there...
    with (
        platform_for_test(
            url=live_server.url, settings=settings, data_dir=sandbox_data_dir
        ) as platform,
        time_machine.travel(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), tick=False),
    ):
        assert _stamp_of_new_record(platform, "In 2030").year == 2030
    RegisteredApp.objects.all().delete()  # as that test's rows are gone for the next one

    # ...the next test's sandbox stamps its records now, not just after 2030.
    with platform_for_test(url=live_server.url, settings=settings, data_dir=sandbox_data_dir) as (
        platform
    ):
        before = timezone.now()
        stamp = _stamp_of_new_record(platform, "Now")

    assert before <= stamp <= timezone.now()
