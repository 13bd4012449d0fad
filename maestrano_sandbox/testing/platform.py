"""The sandbox and the app under test on one live server, and what a test does with them.

The app is tested as the real platform would meet it: the sandbox talks to it over HTTP
only (SSO, webhooks, Connec! notifications), and so does ``Platform.login``. This module
only sets both sides up and plays the platform's other actors (its users, other apps).

Models are imported where they are used: settings modules import ``maestrano_sandbox.testing``
before the apps are ready.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from maestrano_integration.connec_wire import MAX_PAGE_SIZE
from maestrano_sandbox.keys import IdpKeyPair, ensure_key_pairs

from . import sso
from .overrides import SettingsOverrides
from .setup import setup_message, setup_problems

if TYPE_CHECKING:
    from maestrano_sandbox.models import Group, GroupMembership, PlatformUser, RegisteredApp

#: The preset the platform configures when the settings name no ``DEFAULT_PRESET``.
DEFAULT_PRESET = "maestrano"
#: The api id the sandbox gives the app under test.
DEFAULT_API_ID = "app-test"
#: Seconds ``write_record`` waits for its notifications to be delivered (retries included).
DELIVERY_WAIT_SECONDS = 20.0


@dataclass
class Platform:
    """A running app + sandbox (one live server) and the sandbox's registration of the app."""

    url: str  # live server root: the app host
    app: RegisteredApp  # the sandbox's registration of the app under test
    keys: IdpKeyPair  # the sandbox IdP's signing key pair
    settings: Any = field(repr=False)  # its writes are undone after the test
    mount: str = "/sandbox"  # where the URLconf serves the sandbox

    @property
    def sandbox_url(self) -> str:
        return f"{self.url}{self.mount}"

    @property
    def connec_url(self) -> str:
        return f"{self.sandbox_url}/connec"

    @property
    def api_id(self) -> str:
        return self.app.api_id

    @property
    def api_key(self) -> str:
        return self.app.api_key

    @property
    def auth(self) -> tuple[str, str]:
        return (self.app.api_id, self.app.api_key)

    # --- the app's side: presets and registrations ----------------------------------------
    def preset_values(self, app: RegisteredApp | None = None, **overrides: Any) -> dict[str, Any]:
        """Preset settings for ``app`` (default: the app under test) pointing at this sandbox;
        ``overrides`` are merged into them key by key (``sso={"creation_mode": "virtual"}``)."""
        app = app or self.app
        values: dict[str, Any] = {
            "environment": "test",
            "app": {"host": self.url},
            "api": {
                "id": app.api_id,
                "key": app.api_key,
                "host": self.sandbox_url,
                "base": "/api/v1/",
            },
            "sso": {"x509_certificate": self.keys.certificate_pem},
            "connec": {"host": self.connec_url, "timeout": 10},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                values[key] = {**values.get(key, {}), **value}
            else:
                values[key] = value
        return values

    def register_app(self, *, api_id: str | None = None, **fields: Any) -> RegisteredApp:
        """Register another application with the sandbox (e.g. a second preset's app)."""
        from maestrano_sandbox.models import RegisteredApp

        return RegisteredApp.objects.create(
            api_id=api_id or f"app-{secrets.token_hex(3)}",
            api_key=secrets.token_urlsafe(16),
            app_host=fields.pop("app_host", self.url),
            **fields,
        )

    def configure(self, **presets: dict[str, Any]) -> None:
        """Replace the app's presets: ``configure(maestrano=..., other=...)``."""
        self.settings.MAESTRANO = {**self.settings.MAESTRANO, "PRESETS": presets}

    def refresh_metadata(self) -> RegisteredApp:
        """Register the app's paths and subscriptions from its metadata endpoint, as the
        platform did (custom paths, the entities its mappers sync)."""
        from maestrano_sandbox.registration import refresh_metadata

        return refresh_metadata(self.app)

    # --- the platform's people ------------------------------------------------------------
    def add_group(
        self, *, uid: str | None = None, app: RegisteredApp | None = None, **fields: Any
    ) -> Group:
        """A group (created as needed) that uses ``app`` (default: the app under test);
        ``fields``: name, currency, free_trial_end_at, has_credit_card..."""
        from maestrano_sandbox import directory

        group = directory.upsert_group(uid=uid, **fields)
        directory.start_using_app(group=group, app=app or self.app)
        return group

    def add_user(self, *, uid: str | None = None, **fields: Any) -> PlatformUser:
        """A platform user (created as needed; ``fields``: name, surname, email...)."""
        from maestrano_sandbox import directory

        return directory.upsert_user(uid=uid, **fields)

    def add_member(
        self,
        *,
        group_uid: str,
        user_uid: str,
        role: str = "Member",
        app: RegisteredApp | None = None,
        group_name: str | None = None,
        name: str | None = None,
        surname: str | None = None,
        email: str | None = None,
        **group_fields: Any,
    ) -> GroupMembership:
        """Put a platform user in a group that uses ``app`` (default: the app under test),
        creating both as needed (``group_fields``: currency, free_trial_end_at,
        has_credit_card...). Returns the sandbox ``GroupMembership``."""
        from maestrano_sandbox import directory

        group = self.add_group(uid=group_uid, app=app, name=group_name, **group_fields)
        user = self.add_user(uid=user_uid, name=name, surname=surname, email=email)
        return directory.set_membership(group=group, user=user, role=role)

    # --- a person signing in ----------------------------------------------------------------
    def session(self) -> requests.Session:
        """A fresh HTTP client (a browser without JavaScript), talking to 127.0.0.1 only."""
        return requests.Session()

    def login(
        self,
        *,
        user_uid: str | None = None,
        group_uid: str | None = None,
        role: str = "Admin",
        http: requests.Session | None = None,
        init_path: str | None = None,
        **fields: Any,
    ) -> requests.Session:
        """Sign in to the app through the sandbox's IdP, over HTTP: the app's SSO start,
        the IdP's sign-in form (the user and group created as needed, the user a member
        with ``role``), the SAML Response posted to the app's ACS, the completion.

        Returns the HTTP session (``http``, or a new one), logged in to the app. ``fields``
        are those of ``maestrano_sandbox.testing.sso.submit_login`` (name, surname, email,
        group_name, currency...); ``init_path`` defaults to the registered app's
        (``refresh_metadata`` reads yours).
        AssertionError, with the page, when a step does not answer as a login does.
        """
        http = http or self.session()
        completion = sso.login(
            self,
            http,
            init_path=init_path or self.app.init_path,
            user_uid=user_uid,
            group_uid=group_uid,
            role=role,
            **fields,
        )
        if completion.status_code != 302:
            raise AssertionError(
                f"The SSO completion answered {completion.status_code}, not the redirect of a "
                f"login: {completion.text[:2000]}"
            )
        return http

    # --- Connec! data: another app of the group -------------------------------------------
    def write_record(
        self,
        *,
        group_uid: str,
        entity: str,
        data: dict[str, Any],
        record_id: str | None = None,
        wait: float = DELIVERY_WAIT_SECONDS,
    ) -> dict[str, Any]:
        """Create (or, with ``record_id``, update) a Connec! record of the group as another
        application would: every app of the group subscribed to ``entity`` is notified.

        The notifications are delivered before this returns (up to ``wait`` seconds,
        retries included; ``0`` leaves them to the sandbox's delivery thread); a delivery
        the app refused or never answered is an AssertionError. Returns the record as the
        Connec! API answers it. A write the sandbox refuses raises its
        ``maestrano_sandbox.connec.errors.ConnecApiError`` (an unknown group: 404).
        """
        from maestrano_sandbox.connec.api import Operation, run_and_notify
        from maestrano_sandbox.connec.notifications import deliver_pending
        from maestrano_sandbox.models import NotificationDelivery

        outcome = run_and_notify(
            Operation(
                method="PUT" if record_id else "POST",
                group_uid=group_uid,
                entity=entity,
                record_id=record_id,
                body={entity: data},
            ),
            app=None,
        )
        if wait and outcome.deliveries:
            deliver_pending(timeout=wait, ids=outcome.deliveries)
            undelivered = NotificationDelivery.objects.filter(pk__in=outcome.deliveries).exclude(
                status=NotificationDelivery.DELIVERED
            )
            problems = [
                f"to {delivery.app.api_id}: {delivery.status} after {delivery.attempts} "
                f"attempt(s) {delivery.last_error[:200]}".rstrip()
                for delivery in undelivered.select_related("app")
            ]
            if problems:
                raise AssertionError(
                    f"The notification of the {entity} record was not delivered within "
                    f"{wait:g} s: " + "; ".join(problems)
                )
        record: dict[str, Any] = outcome.body[entity]
        return record

    def records(
        self, *, group_uid: str, entity: str, external_ids: bool = False
    ) -> list[dict[str, Any]]:
        """Every record of the group's ``entity`` in the sandbox, oldest first, as the Connec!
        API answers them (``external_ids``: ids as lists of ``{provider, realm, id}``, the
        apps' own ids among them)."""
        from maestrano_sandbox.connec.api import Operation, run_and_notify

        found: list[dict[str, Any]] = []
        while True:
            outcome = run_and_notify(
                Operation(
                    method="GET",
                    group_uid=group_uid,
                    entity=entity,
                    query={
                        "$top": str(MAX_PAGE_SIZE),
                        "$skip": str(len(found)),
                        "$orderby": "created_at asc",
                    },
                    external_ids=external_ids,
                ),
                app=None,
            )
            page = outcome.body[entity]
            found.extend(page)
            if len(page) < MAX_PAGE_SIZE:
                return found


def start_platform(
    *,
    url: str,
    settings: Any,
    data_dir: Path,
    api_id: str = DEFAULT_API_ID,
    name: str = "App under test",
) -> Platform:
    """Register the app served at ``url`` with the sandbox and point the default preset at
    the sandbox (the other keys of ``MAESTRANO`` are kept; presets from a developer
    platform, ``DEV_PLATFORM``, are not loaded).

    ``settings`` is an object whose attribute writes override Django's settings until the
    test ends (pytest-django's ``settings`` fixture); the sandbox's IdP keys are made in
    ``data_dir`` (once: keep it for the whole run). ImproperlyConfigured, naming what to
    add, when the settings cannot run the sandbox (``setup_problems``).
    """
    from maestrano_sandbox.models import RegisteredApp

    problems = setup_problems()
    if problems:
        raise ImproperlyConfigured(setup_message(problems))
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "DATA_DIR": data_dir}
    keys = ensure_key_pairs(directory=data_dir)
    app = RegisteredApp.objects.create(
        api_id=api_id, api_key=secrets.token_urlsafe(16), name=name, app_host=url
    )
    running = Platform(
        url=url,
        app=app,
        keys=keys,
        settings=settings,
        mount=reverse("maestrano_sandbox:home").rstrip("/"),
    )
    current = {
        key: value
        for key, value in getattr(settings, "MAESTRANO", {}).items()
        if key != "DEV_PLATFORM"
    }
    preset = current.get("DEFAULT_PRESET") or DEFAULT_PRESET
    settings.MAESTRANO = {
        **current,
        "DEFAULT_PRESET": preset,
        "PRESETS": {preset: running.preset_values()},
    }
    return running


@contextmanager
def platform_for_test(*, url: str, data_dir: Path, settings: Any = None) -> Iterator[Platform]:
    """One test's platform: ``start_platform`` on entry; on exit, what it changed undone.

    ``settings``: pytest-django's ``settings`` fixture, which undoes its changes itself;
    without it, a ``SettingsOverrides`` (Django's ``override_settings``) undone here. The
    one setup of ``maestrano_sandbox.pytest_plugin``'s ``maestrano_platform`` and of
    ``maestrano_sandbox.testing.MaestranoPlatformTestCase``.
    """
    from maestrano_sandbox.connec.clock import restart_clock

    restart_clock()  # this test's records are stamped from now
    own = SettingsOverrides() if settings is None else None
    try:
        yield start_platform(url=url, settings=settings if own is None else own, data_dir=data_dir)
    finally:
        if own is not None:
            own.undo()
        # Eager tasks mark "inside a task" in one flag for the whole process, saved and
        # restored around each task: when the test's thread and the live server's thread run
        # eager tasks at once, the restores interleave and can leave it set, and a later
        # test's ``result.get()`` then fails with "Never call result.get() within a task!".
        from celery._state import _set_task_join_will_block  # type: ignore[attr-defined]

        _set_task_join_will_block(False)


def release_sandbox_connections() -> None:
    """Before a test run drops its databases: the sandbox's notification thread closes the
    connection it keeps across wake-ups (an open connection blocks ``DROP DATABASE`` on
    PostgreSQL). AssertionError if it did not in time."""
    if not apps.is_installed("maestrano_sandbox"):
        return
    from maestrano_sandbox.connec.notifications import release_connections

    if not release_connections():
        raise AssertionError("the sandbox's notification thread kept its connection")
