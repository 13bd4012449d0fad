"""django-axes for the admin site's password login only.

With ``AXES_ONLY_ADMIN_SITE`` django-axes neither throttles nor counts other
logins, but its database handler still cleans and resets attempt rows on every
successful login (four queries per SSO login). This handler skips those
for logins outside the admin site: SSO logins have no password to throttle.
"""

from __future__ import annotations

from typing import Any

from axes.conf import settings
from axes.handlers.database import AxesDatabaseHandler


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
