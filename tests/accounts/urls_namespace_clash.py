"""Project URLconfs with namespaces of their own beside ours.

``urlpatterns``: the project's own ``accounts`` app (a common name) is included before
ours and takes nothing from it. ``hidden``: an app that takes our own namespace,
``maestrano_accounts``, before ours (only an unlikely copy would)."""

from django.http import HttpResponse
from django.urls import include, path

profile = [path("profile/", lambda request: HttpResponse(), name="profile")]

urlpatterns = [
    path("users/", include((profile, "accounts"))),
    path("", include("maestrano_integration.urls")),
]
