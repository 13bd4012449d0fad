from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM (example application)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import mappers  # noqa: F401  (registers the sync mappers)
