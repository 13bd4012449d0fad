"""The library's own landing page (``/dashboard/``, the template ``maestrano_accounts`` ships,
as a project that does not override it renders it): the person's role in the current
company, and the way to the billing pages for the company's Admins when the project
includes them.

Through the Django test client, with the example project's template directory left out so
that the app's template renders (the example overrides it).
"""

from __future__ import annotations

import sys
import types

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from django.urls import clear_url_caches, include, path

from maestrano_accounts.models import Company, Membership
from tests.helpers.users import platform_user, sso_browser

pytestmark = pytest.mark.django_db

#: The project's TEMPLATES without its own directory: the apps' templates only.
APP_TEMPLATES = [{**django_settings.TEMPLATES[0], "DIRS": []}]


@pytest.fixture
def company():
    return Company.objects.create(preset="maestrano", group_uid="cld-dash", name="Dash Pty")


def browser_with_role(company: Company, role: str):
    user = platform_user(f"usr-{role.lower().replace(' ', '-')}")
    Membership.objects.create(user=user, company=company, role=role)
    return sso_browser(user, company, uid=user.username)


@override_settings(TEMPLATES=APP_TEMPLATES)
def test_an_admin_sees_the_role_and_the_way_to_billing(company):
    page = browser_with_role(company, "Admin").get("/dashboard/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="company-name">Dash Pty<' in html
    assert "Your role here: Admin" in html
    assert 'id="billing-link"' in html and 'href="/billing/"' in html


@override_settings(TEMPLATES=APP_TEMPLATES)
def test_a_member_sees_the_role_and_no_billing_link(company):
    page = browser_with_role(company, "Member").get("/dashboard/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Your role here: Member" in html
    assert 'id="billing-link"' not in html


@override_settings(TEMPLATES=APP_TEMPLATES, LANGUAGE_CODE="fr")
def test_the_role_is_said_in_the_sites_language(company):
    page = browser_with_role(company, "Power User").get("/dashboard/")

    assert "Votre rôle ici : Utilisateur avancé" in page.content.decode()


@pytest.fixture
def project_without_billing_pages(settings):
    """A project that includes the Maestrano pages (the dashboard among them) but not the
    billing ones."""
    module = types.ModuleType("tests_urls_without_billing")
    module.urlpatterns = [path("", include("maestrano_integration.urls"))]
    sys.modules[module.__name__] = module
    settings.ROOT_URLCONF = module.__name__
    clear_url_caches()
    yield
    del sys.modules[module.__name__]
    clear_url_caches()


@override_settings(TEMPLATES=APP_TEMPLATES)
def test_no_billing_link_when_the_project_has_no_billing_pages(
    company, project_without_billing_pages
):
    page = browser_with_role(company, "Admin").get("/dashboard/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Your role here: Admin" in html
    assert 'id="billing-link"' not in html
