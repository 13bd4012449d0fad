"""A preset that sets only ``api.host`` reaches the sandbox's Connec! hub (connec.host follows)."""

from __future__ import annotations

import pytest

from maestrano_integration.conf import get_preset
from maestrano_integration.connec import ConnecClient
from sandbox.models import Group

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])


def test_the_connec_client_works_with_only_api_host_set(platform):
    values = platform.preset_values()
    values.pop("connec")
    platform.settings.MAESTRANO = {"PRESETS": {"maestrano": values}}
    group = Group.objects.create(uid="cld-only-api", name="Acme")
    group.apps.add(platform.app)
    assert get_preset().connec_host == f"{platform.url}/sandbox"

    with ConnecClient(group_id="cld-only-api") as connec:
        created = connec.create("people", {"first_name": "Ada", "last_name": "Lovelace"})
        people = list(connec.list("people"))
        results = connec.batch([{"method": "get", "url": connec.entity_path("people")}])

    assert [person["id"] for person in people] == [created["id"]]
    assert results[0].ok
