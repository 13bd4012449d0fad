"""Each app owns its section of ``MAESTRANO``: ``SYNC`` (maestrano_sync.conf), ``CONNEC`` (the
Connec!
client, maestrano_integration.conf). Keys that moved from ``SYNC`` to ``CONNEC`` are still
honoured at the old place, with a DeprecationWarning and the check ``maestrano.W013``.

The Connec! client's HTTP is answered by ``responses`` (as in test_connec_client.py).
"""

from __future__ import annotations

import pytest
import responses

from maestrano_integration.checks import check_presets
from maestrano_integration.conf import maestrano_settings
from maestrano_integration.connec import ConnecClient, ConnecServerError
from maestrano_sync.conf import SyncSettings, sync_settings
from tests.conftest import preset_values

HOST = "http://connec.test"
PEOPLE = f"{HOST}/api/v2/cld-1/people"


def configure(settings, **sections):
    settings.MAESTRANO = {
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1", connec={"host": HOST})
        },
        **sections,
    }


def page(skip: int, count: int) -> dict:
    people = [{"id": f"p-{skip + n}", "updated_at": "2016-10-04T00:00:00Z"} for n in range(count)]
    return {"people": people, "pagination": {"skip": skip, "top": count, "total": 3}}


def listed_tops() -> list[str]:
    return [call.request.params["$top"] for call in responses.calls]


@responses.activate
def test_the_client_reads_its_page_size_and_retries_from_the_connec_section(settings):
    configure(settings, CONNEC={"PAGE_SIZE": 2, "HTTP_RETRIES": 1, "BACKOFF_FACTOR": 0})
    responses.get(PEOPLE, json=page(0, 2))
    responses.get(PEOPLE, json=page(2, 1))

    with ConnecClient(group_id="cld-1") as connec:
        assert [r["id"] for r in connec.list("people")] == ["p-0", "p-1", "p-2"]
    assert listed_tops() == ["2", "2"]

    responses.calls.reset()
    responses.get(f"{PEOPLE}/p-0", status=503, json={})
    with ConnecClient(group_id="cld-1") as connec, pytest.raises(ConnecServerError):
        connec.retrieve("people", "p-0")
    assert len(responses.calls) == 2  # one try and HTTP_RETRIES=1 retry


@responses.activate
@pytest.mark.filterwarnings("ignore:MAESTRANO:DeprecationWarning")  # asserted once below
def test_client_keys_set_under_sync_are_still_honoured_with_a_warning(settings):
    configure(settings, SYNC={"PAGE_SIZE": 2, "HTTP_RETRIES": 0, "BACKOFF_FACTOR": 0})
    responses.get(PEOPLE, json=page(0, 2))
    responses.get(PEOPLE, json=page(2, 1))

    moved = r"MAESTRANO\['SYNC'\]\['PAGE_SIZE'\] moved"
    with pytest.warns(DeprecationWarning, match=moved), ConnecClient(group_id="cld-1") as connec:
        assert len(list(connec.list("people"))) == 3
    assert listed_tops() == ["2", "2"]

    responses.calls.reset()
    responses.get(f"{PEOPLE}/p-0", status=503, json={})
    with ConnecClient(group_id="cld-1") as connec, pytest.raises(ConnecServerError):
        connec.retrieve("people", "p-0")
    assert len(responses.calls) == 1  # HTTP_RETRIES=0 from SYNC: no retry

    warnings = [m for m in check_presets() if m.id == "maestrano.W013"]
    moved_keys = sorted(m.msg.split("]")[1] for m in warnings)
    assert moved_keys == ["['BACKOFF_FACTOR'", "['HTTP_RETRIES'", "['PAGE_SIZE'"]
    assert all("MAESTRANO['CONNEC']" in m.hint for m in warnings)


def test_the_connec_section_wins_over_the_old_place(settings, recwarn):
    configure(settings, SYNC={"PAGE_SIZE": 7}, CONNEC={"PAGE_SIZE": 3})

    assert maestrano_settings.connec().page_size == 3


def test_sync_settings_are_typed_with_their_defaults(settings):
    configure(settings, SYNC={"BATCH_SIZE": 50, "EXTRA_ENTITIES": ["projects"]})

    values = sync_settings()

    assert isinstance(values, SyncSettings)
    assert values.batch_size == 50
    assert values.extra_entities == ("projects",)
    assert values.max_attempts == SyncSettings.max_attempts
    assert maestrano_settings.SYNC["BATCH_SIZE"] == 50  # the raw section stays readable
    assert not [m for m in check_presets() if m.id in {"maestrano.W010", "maestrano.W013"}]

    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"BATCH_SIZE": 10}}

    assert sync_settings().batch_size == 10
