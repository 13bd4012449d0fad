from django.apps import AppConfig
from django.core.signals import request_started
from django.utils.translation import gettext_lazy as _


class MaestranoIntegrationConfig(AppConfig):
    name = "maestrano_integration"
    verbose_name = _("Maestrano integration")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .request_text import set_unusable_content_type_aside

        # Before Django builds each request: an unusable Content-Type charset is set
        # aside, not a 500 (request_text; UnusableCharsetMiddleware answers it 400).
        request_started.connect(
            set_unusable_content_type_aside, dispatch_uid="maestrano_integration.request_text"
        )
