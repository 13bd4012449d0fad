"""docs/install.md's settings block, appended to a settings module that holds tuples.

Projects started before Django 1.9 (and many still running) declare ``INSTALLED_APPS``
and ``MIDDLEWARE`` as tuples; the block must work on them as on ``startproject``'s lists.
"""

from __future__ import annotations

from tests.helpers.adoption import doc_blocks


def settings_block() -> str:
    return next(code for first, code in doc_blocks() if first == "# add to mysite/settings.py")


def test_the_settings_block_applies_to_a_project_whose_settings_are_tuples():
    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    namespace = {
        "INSTALLED_APPS": ("django.contrib.auth", "django.contrib.contenttypes", "shop"),
        "MIDDLEWARE": ("django.contrib.sessions.middleware.SessionMiddleware", auth),
    }

    exec(settings_block(), namespace)  # the documented block, as appended to a module

    assert list(namespace["INSTALLED_APPS"])[:3] == [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "shop",
    ]
    assert "maestrano_accounts" in namespace["INSTALLED_APPS"]
    assert "rest_framework" in namespace["INSTALLED_APPS"]
    middleware = list(namespace["MIDDLEWARE"])
    assert middleware[0] == "maestrano_integration.request_text.UnusableCharsetMiddleware"
    assert middleware[middleware.index(auth) + 1] == (
        "maestrano_accounts.middleware.MaestranoSessionMiddleware"
    )
