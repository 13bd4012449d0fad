from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MaestranoIntegrationConfig(AppConfig):
    name = "maestrano_integration"
    verbose_name = _("Maestrano integration")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
