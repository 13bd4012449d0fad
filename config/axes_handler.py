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
    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        if settings.AXES_ONLY_ADMIN_SITE and not self.is_admin_request(request):
            return
        super().user_logged_in(sender, request, user, **kwargs)
