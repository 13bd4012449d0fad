"""A preset that sets only ``api.host`` reaches the sandbox's Connec! hub (connec.host follows)."""

from __future__ import annotations

import pytest

from maestrano_integration.conf import get_preset
from maestrano_integration.connec import ConnecClient
from maestrano_sandbox.models import Group

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


def test_path_based_calls_and_the_company_singleton(platform):
    group = Group.objects.create(uid="cld-paths", name="Paths Ltd")
    group.apps.add(platform.app)

    with ConnecClient(group_id="cld-paths") as connec:
        created = connec.post("/people", {"people": {"first_name": "Grace"}})["people"]
        fetched = connec.get(f"/people/{created['id']}")["people"]
        updated = connec.put(f"/people/{created['id']}", {"people": {"last_name": "Hopper"}})
        listed = connec.get("/people", params={"$top": 5})["people"]
        company = connec.retrieve_singleton("company")
        renamed = connec.put("/company", {"company": {"name": "Paths Pty"}})["company"]
        pages = list(connec.iter_pages("company"))

    assert fetched["first_name"] == "Grace"
    assert updated["people"]["last_name"] == "Hopper"
    assert [person["id"] for person in listed] == [created["id"]]
    assert company["name"] == "Paths Ltd"
    assert renamed["name"] == "Paths Pty"
    assert [page.records[0]["name"] for page in pages] == ["Paths Pty"]
