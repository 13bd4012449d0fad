"""django-axes for the admin site's password login only.

With ``AXES_ONLY_ADMIN_SITE`` django-axes neither throttles nor counts other
logins, but its database handler still cleans and resets attempt rows on every
successful login (four queries per SSO login). This handler skips those
for logins outside the admin site: SSO logins have no password to throttle.

It also records a failed admin login with what the client sent made storable: the
username, user agent, ``Accept`` and path with NUL and lone surrogates escaped and cut
to their columns (the admin's form checks neither the length nor, for the headers,
the text before authenticating; PostgreSQL refuses both, a 500 instead of the form's
error).
"""

from __future__ import annotations

from typing import Any

from axes.conf import settings
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt

from maestrano_integration.strict_input import escape_unsafe


def _storable(value: str, field: str) -> str:
    """``value`` fit for the ``field`` column of django-axes' ``AccessAttempt``."""
    return escape_unsafe(value)[: AccessAttempt._meta.get_field(field).max_length]


class AdminSiteAxesHandler(AxesDatabaseHandler):
    def is_admin_request(self, request: Any) -> bool:
        """Whether ``request`` went to a view of an admin site (app namespace ``admin``).

        Read from the view Django resolved for the request; django-axes' own check
        reverses ``admin:index`` on every call, once per login. A request not resolved
        (yet) falls back to that check.
        """
        match = getattr(request, "resolver_match", None)
        if match is None:
            return super().is_admin_request(request)
        return "admin" in match.app_names

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        if settings.AXES_ONLY_ADMIN_SITE and not self.is_admin_request(request):
            return
        super().user_logged_in(sender, request, user, **kwargs)

    def user_login_failed(
        self, sender: Any, credentials: dict, request: Any = None, **kwargs: Any
    ) -> None:
        if request is not None:
            for attribute, field in (
                ("axes_user_agent", "user_agent"),
                ("axes_http_accept", "http_accept"),
                ("axes_path_info", "path_info"),
            ):
                if isinstance(getattr(request, attribute, None), str):
                    setattr(request, attribute, _storable(getattr(request, attribute), field))
        name = settings.AXES_USERNAME_FORM_FIELD
        if isinstance(credentials, dict) and isinstance(credentials.get(name), str):
            credentials = {**credentials, name: _storable(credentials[name], "username")}
        super().user_login_failed(sender, credentials, request, **kwargs)
