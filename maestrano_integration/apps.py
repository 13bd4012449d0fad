from django.apps import AppConfig


class MaestranoIntegrationConfig(AppConfig):
    name = "maestrano_integration"
    verbose_name = "Maestrano integration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
