"""``MaestranoPlatformTestCase``, as a project whose tests are Django ``TestCase`` classes
writes them (docs/sandbox.md, "With Django's test runner"): no pytest here. pytest runs
this module as unittest classes; ``tests/sandbox/test_platform_testcase_runner.py`` runs it
with ``python -m django test`` too."""

from __future__ import annotations

import copy

import requests
from django.conf import settings
from django.test import SimpleTestCase

from crm.models import Person
from maestrano_accounts.models import Company
from maestrano_sandbox.models import RegisteredApp
from maestrano_sandbox.testing import MaestranoPlatformTestCase

#: The settings the platform changes, as the settings module has them (read on import,
#: before any test).
WATCHED = ("MAESTRANO", "MAESTRANO_SANDBOX")
BEFORE = {name: copy.deepcopy(getattr(settings, name)) for name in WATCHED}


class PlatformTests(MaestranoPlatformTestCase):
    def setUp(self):
        # Nothing of another test is left: the settings module's settings (another test's
        # changes undone), then a fresh registration, no company, no person.
        for name in WATCHED:
            self.assertEqual(getattr(settings, name), BEFORE[name], name)
        super().setUp()
        self.assertEqual(list(RegisteredApp.objects.values_list("api_id", flat=True)), ["app-test"])
        self.assertFalse(Company.objects.exists())
        self.assertFalse(Person.objects.exists())

    def test_a_marketplace_user_signs_in_through_the_sandbox(self):
        http = self.platform.login(user_uid="usr-kit", group_uid="cld-kit", group_name="Kit Co")

        dashboard = http.get(f"{self.platform.url}/dashboard/", allow_redirects=False, timeout=10)
        self.assertEqual(dashboard.status_code, 200)
        self.assertIn("Kit Co", dashboard.text)
        self.assertEqual(Company.objects.get(group_uid="cld-kit").name, "Kit Co")
        anonymous = requests.get(
            f"{self.live_server_url}/dashboard/", allow_redirects=False, timeout=10
        )
        self.assertEqual(anonymous.status_code, 302)

    def test_a_record_written_on_the_platform_reaches_the_app_and_back(self):
        self.platform.login(user_uid="usr-kit", group_uid="cld-kit")

        person = self.platform.write_record(
            group_uid="cld-kit", entity="people", data={"first_name": "Ada", "last_name": "Byron"}
        )
        self.assertEqual(Person.objects.get(last_name="Byron").first_name, "Ada")

        updated = self.platform.write_record(
            group_uid="cld-kit", entity="people", record_id=person["id"], data={"last_name": "King"}
        )
        self.assertEqual(updated["id"], person["id"])
        self.assertEqual(Person.objects.get().last_name, "King")
        [stored] = self.platform.records(group_uid="cld-kit", entity="people")
        self.assertEqual(stored["id"], person["id"])
        self.assertEqual((stored["first_name"], stored["last_name"]), ("Ada", "King"))

    def test_a_default_preset_pointing_at_the_sandbox_the_rest_kept(self):
        """(First by name: the tests after it see its changes undone.)"""
        self.assertEqual(self.platform.url, self.live_server_url)
        self.assertEqual(list(settings.MAESTRANO["PRESETS"]), ["maestrano"])
        preset = settings.MAESTRANO["PRESETS"]["maestrano"]
        self.assertEqual(preset["api"]["host"], self.platform.sandbox_url)
        self.assertEqual(preset["api"]["key"], self.platform.api_key)
        self.assertEqual(settings.MAESTRANO["HEALTH"], BEFORE["MAESTRANO"]["HEALTH"])
        self.assertNotEqual(
            settings.MAESTRANO_SANDBOX["DATA_DIR"], BEFORE["MAESTRANO_SANDBOX"]["DATA_DIR"]
        )
        # A change of the test's own, undone with the others.
        self.platform.configure(other=self.platform.preset_values(environment="other"))
        self.assertEqual(list(settings.MAESTRANO["PRESETS"]), ["other"])

    def test_the_static_files_are_served_from_the_apps_as_by_pytest_djangos_server(self):
        css = requests.get(
            f"{self.live_server_url}{settings.STATIC_URL}admin/css/base.css", timeout=10
        )
        self.assertEqual(css.status_code, 200)


class SettingsAfterPlatformTests(SimpleTestCase):
    """Runs after PlatformTests (in the module's order under pytest, by class name under
    Django's runner)."""

    def test_the_settings_are_those_of_the_settings_module_again(self):
        for name in WATCHED:
            with self.subTest(setting=name):
                self.assertEqual(getattr(settings, name), BEFORE[name])


class ForgottenSuperSetUpTests(MaestranoPlatformTestCase):
    def setUp(self):
        pass  # no super().setUp()

    def test_the_platform_says_what_is_missing(self):
        with self.assertRaisesMessage(AttributeError, "call super().setUp() first in yours"):
            self.platform  # noqa: B018
