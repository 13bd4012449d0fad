"""The emulated platform's URLs, mounted at /sandbox/ (or alone by ``config.urls.sandbox``).

Each area keeps its own URL module: ``identity`` (IdP, sessions, Account API,
account webhooks, pages) and ``connec`` (Connec! API, batch, notifications).
"""

from django.db import connections
from django.urls import URLResolver, include, path, re_path

from maestrano_integration.platform_api import SchemaUIView, SchemaView

from ..connec import rest as connec_rest
from ..schema import SETTINGS as SCHEMA_SETTINGS
from ..schema import sandbox_schema
from ..views import errors, pages

app_name = "maestrano_sandbox"

urlpatterns = [
    path("", pages.home, name="home"),
    # The OpenAPI schema of the Account API (docs/openapi/sandbox.yaml), and a Swagger UI.
    path(
        "api/schema/",
        SchemaView.as_view(build=sandbox_schema, custom_settings=SCHEMA_SETTINGS),
        name="api-schema",
    ),
    path(
        "api/schema/ui/",
        SchemaUIView.as_view(url_name="maestrano_sandbox:api-schema"),
        name="api-schema-ui",
    ),
    path("", include("maestrano_sandbox.urls.identity")),
    path("connec/", include("maestrano_sandbox.urls.connec")),
    # The Connec! API also answers at the Account API's host, so that a preset which
    # sets only api.host (connec.host then follows it) reaches the sandbox's hub.
    path("api/v2/<str:group_id>/<str:entity>", connec_rest.entity_view),
    path("api/v2/<str:group_id>/<str:entity>/<str:record_id>", connec_rest.entity_view),
    path("batch", connec_rest.batch_view),
    # Last: a path under an API that names no endpoint answers that API's JSON 404, not
    # the sandbox's HTML page (the Connec! API's paths first: both are under api/).
    re_path(r"^(?:connec/)?api/v2/", errors.connec_api_not_found),
    re_path(r"^(?:connec/)?batch/", errors.connec_api_not_found),
    re_path(r"^connec/api/", errors.connec_api_not_found),
    re_path(r"^api/(?:v1|config)/", errors.account_api_not_found),
]


def _outside_request_transactions(patterns: list) -> None:
    """Mark every view of the sandbox ``non_atomic_requests`` on every database.

    The sandbox runs beside a project's app in its tests, under the project's settings:
    with ``ATOMIC_REQUESTS``, Django would run each sandbox view in a transaction on the
    app's database. On SQLite that transaction holds the app's write lock from its start,
    and a page that calls the app (an account webhook) waited for the app, which waited
    for the lock. The sandbox keeps its own data apart and commits as it goes."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _outside_request_transactions(pattern.url_patterns)
            continue
        view = pattern.callback
        view._non_atomic_requests = {*getattr(view, "_non_atomic_requests", ()), *connections}


_outside_request_transactions(urlpatterns)
