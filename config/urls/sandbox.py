"""URLs of a sandbox-only server (``SANDBOX_ONLY=true``): the emulated platform alone, at /sandbox/.

Run the platform on its own port, apart from the app, e.g.
``DEBUG=true SANDBOX_ONLY=true manage.py runserver 127.0.0.1:8100``; the app's preset then
points ``api.host`` at ``http://127.0.0.1:8100/sandbox``.
"""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/sandbox/", permanent=False)),
    path("admin/", admin.site.urls),
    path("sandbox/", include("maestrano_sandbox.urls")),
]

# JSON on the sandbox's APIs, Django's 400 page elsewhere (as config/urls/__init__.py).
handler400 = "maestrano_integration.views.bad_request"
# The sandbox's 404 page under /sandbox/ (Django's, the project's 404.html, elsewhere).
handler404 = "maestrano_sandbox.views.errors.page_not_found"
