"""URLs of the example application's pages. Included at the site root by config.urls."""

from django.urls import path

from . import views

app_name = "crm"


def _record_urls(plural: str, prefix: str, list_view, edit_view, delete_view, status_view) -> list:
    return [
        path(f"{plural}/<int:pk>/sync.json", status_view.as_view(), name=f"{prefix}-sync-status"),
        path(f"{plural}/", list_view.as_view(), name=f"{prefix}-list"),
        path(f"{plural}/new/", edit_view.as_view(), name=f"{prefix}-create"),
        path(f"{plural}/<int:pk>/", edit_view.as_view(), name=f"{prefix}-edit"),
        path(f"{plural}/<int:pk>/delete/", delete_view.as_view(), name=f"{prefix}-delete"),
    ]


urlpatterns = [
    *_record_urls(
        "organizations",
        "organization",
        views.OrganizationList,
        views.OrganizationEdit,
        views.OrganizationDelete,
        views.OrganizationStatus,
    ),
    *_record_urls(
        "people",
        "person",
        views.PersonList,
        views.PersonEdit,
        views.PersonDelete,
        views.PersonStatus,
    ),
    *_record_urls(
        "items", "item", views.ItemList, views.ItemEdit, views.ItemDelete, views.ItemStatus
    ),
    *_record_urls(
        "invoices",
        "invoice",
        views.InvoiceList,
        views.InvoiceEdit,
        views.InvoiceDelete,
        views.InvoiceStatus,
    ),
    path("sync/import-progress.json", views.import_progress, name="import-progress"),
    path("sync/retry-parked/", views.retry_parked, name="retry-parked"),
    path("sync/settings/", views.sync_settings, name="sync-settings"),
    path("sync/problems/<str:kind>/<int:pk>/retry/", views.retry_problem, name="retry-problem"),
]
