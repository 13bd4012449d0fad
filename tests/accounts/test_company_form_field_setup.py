"""``{% company_form_field %}`` needs the request in its template's context: a project
without the ``request`` context processor is told by a system check (``maestrano.W032``),
and a rendering without the request is logged, instead of leaving the form silently
unprotected (docs/install.md)."""

from __future__ import annotations

import copy
import logging

from django.conf import settings as django_settings
from django.core import checks
from django.template.loader import render_to_string
from django.test import override_settings

from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company

TAG_LOGGER = "maestrano_accounts.templatetags.maestrano"


def warning_ids() -> set[str]:
    return {message.id for message in checks.run_checks(tags=["maestrano"])}


def templates_without_request_processor(*, keep_first: bool = False) -> list[dict]:
    templates = copy.deepcopy(django_settings.TEMPLATES)
    for engine in templates[1 if keep_first else 0 :]:
        options = engine.setdefault("OPTIONS", {})
        options["context_processors"] = [
            name
            for name in options.get("context_processors", [])
            if name != "django.template.context_processors.request"
        ]
    return templates


def make_company(group_uid: str) -> Company:
    return Company.objects.create(preset="maestrano", group_uid=group_uid, name="Acme")


def test_the_project_settings_pass(db):
    assert "maestrano.W032" not in warning_ids()


def test_a_project_without_the_request_context_processor_is_warned(db):
    with override_settings(TEMPLATES=templates_without_request_processor()):
        messages = [m for m in checks.run_checks(tags=["maestrano"]) if m.id == "maestrano.W032"]

    (message,) = messages
    assert "company_form_field" in message.msg and "'django'" in message.msg
    assert "django.template.context_processors.request" in message.hint


def test_a_second_engine_without_it_is_named_too(db):
    second = {**copy.deepcopy(django_settings.TEMPLATES[0]), "NAME": "emails"}
    templates = templates_without_request_processor(keep_first=True)
    templates.append(second)
    second["OPTIONS"]["context_processors"] = []
    with override_settings(TEMPLATES=templates):
        messages = [m for m in checks.run_checks(tags=["maestrano"]) if m.id == "maestrano.W032"]

    (message,) = messages
    assert "'emails'" in message.msg and "'django'" not in message.msg


def test_a_page_rendered_without_the_request_processor_logs_the_unprotected_form(
    client, db, caplog
):
    log_in_to_company(client, make_company("cld-no-request"))
    with (
        override_settings(TEMPLATES=templates_without_request_processor()),
        caplog.at_level(logging.WARNING, logger=TAG_LOGGER),
    ):
        page = client.get("/people/new/")

    assert page.status_code == 200
    assert 'name="maestrano_form_company"' not in page.text
    warnings = [r for r in caplog.records if r.name == TAG_LOGGER]
    assert warnings and "without the request" in warnings[0].getMessage()
    assert "crm/record_form.html" in warnings[0].getMessage()


def test_render_to_string_without_request_logs_and_with_request_renders_the_field(
    client, db, caplog
):
    from crm.models import Person

    company = make_company("cld-render")
    log_in_to_company(client, company)
    request = client.get("/dashboard/").wsgi_request
    person = Person.objects.create(company=company, first_name="Grace")
    context = {"record": person, "prefix": "person", "singular": "person"}
    with caplog.at_level(logging.WARNING, logger=TAG_LOGGER):
        without = render_to_string("crm/record_confirm_delete.html", context)
        logged = [r for r in caplog.records if r.name == TAG_LOGGER]
        caplog.clear()
        with_request = render_to_string("crm/record_confirm_delete.html", context, request=request)

    assert 'name="maestrano_form_company"' not in without
    assert logged and "crm/record_confirm_delete.html" in logged[0].getMessage()
    assert 'name="maestrano_form_company"' in with_request
    assert not [r for r in caplog.records if r.name == TAG_LOGGER]
