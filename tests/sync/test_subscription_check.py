"""``manage.py check`` names the entities a mapper imports that a preset does not subscribe to.

The preset's ``webhook.connec.subscriptions`` is what the metadata asks the platform for,
and what the sync applies: a notification of an entity not subscribed to is ignored, and
reconciliation skips it (``maestrano_sync.inbox_plan.entity_never_applied``). A project
whose mapper imports such an entity (its own ``EXTRA_ENTITIES``, ``company``, or a list
set to fewer entities than it maps) gets the initial import and then nothing of it from
Connec! again: ``maestrano_sync.W004`` says so at start-up.

The example project's mappers import organizations, people, items and invoices.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.conftest import preset_values


def check_output() -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("check", stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def subscribing(*entities: str) -> dict:
    return {"connec": {"subscriptions": {entity: True for entity in entities}}}


@pytest.fixture
def presets(settings):
    def configure(**webhooks: dict) -> None:
        settings.MAESTRANO = {
            **settings.MAESTRANO,
            "DEFAULT_PRESET": "maestrano",
            "PRESETS": {
                name: preset_values(api_id=f"app-{name}", api_key="key", webhook=webhook)
                for name, webhook in webhooks.items()
            },
        }

    return configure


def test_a_mapped_entity_a_preset_does_not_subscribe_to_is_a_warning(presets):
    presets(maestrano=subscribing("organizations", "people", "items", "invoices"))
    assert "maestrano_sync.W004" not in check_output()

    presets(
        maestrano=subscribing("organizations", "people", "items", "invoices"),
        **{"acme-market": subscribing("people")},
    )
    output = check_output()

    warnings = [line for line in output.splitlines() if "maestrano_sync.W004" in line]
    assert len(warnings) == 1, output
    assert "preset 'acme-market'" in warnings[0]
    assert "'invoices', 'items', 'organizations'" in warnings[0]
    assert "reconciliation" in warnings[0]
    assert "MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS" not in output  # not the default preset's
    assert "ACME" not in output
    assert "Subscribe to organizations,people,items,invoices:" in output
    assert "MAESTRANO['PRESETS']['acme-market']['webhook']['connec']['subscriptions']" in output


def test_the_hint_names_the_variable_of_the_default_preset(presets):
    presets(maestrano=subscribing("people", "organizations"))

    output = check_output()

    assert "maestrano_sync.W004" in output
    assert "'invoices', 'items'" in output
    assert "MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS" in output
    assert "organizations,people,items,invoices" in output
