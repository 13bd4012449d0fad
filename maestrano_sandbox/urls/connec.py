"""The sandbox's Connec! data hub, mounted at ``/sandbox/connec/``: API v2, batch, pages."""

from django.urls import path as api_path

from ..connec import rest, views
from ..safe_text import path  # pages refuse NUL and lone surrogates; the API checks its own input

urlpatterns = [
    # The API, as apps call it (docs/protocol.md, 'Connec! API v2').
    api_path("api/v2/<str:group_id>/<str:entity>", rest.entity_view, name="connec-collection"),
    api_path(
        "api/v2/<str:group_id>/<str:entity>/<str:record_id>",
        rest.entity_view,
        name="connec-record-api",
    ),
    api_path("batch", rest.batch_view, name="connec-batch"),
    # Pages of the sandbox.
    path("", views.connec_home, name="connec-home"),
    path("groups/<str:uid>/", views.group_records, name="connec-group"),
    path("groups/<str:uid>/<str:entity>/", views.group_records, name="connec-entity"),
    path(
        "groups/<str:uid>/<str:entity>/<uuid:record_id>/",
        views.record_detail,
        name="connec-record",
    ),
    path("deliveries/", views.deliveries, name="connec-deliveries"),
    path("deliveries/<int:pk>/retry", views.delivery_retry, name="connec-delivery-retry"),
    path("faults/", views.faults, name="connec-faults"),
    path("faults/<str:api_id>/clear", views.faults_clear, name="connec-faults-clear"),
]
