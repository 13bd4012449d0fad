from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SyncConfig(AppConfig):
    name = "maestrano_sync"
    # Every name it takes starts with ``maestrano``, so that a project's own ``sync`` app
    # lives beside it.
    label = "maestrano_sync"
    verbose_name = _("Connec! sync")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from maestrano_integration.metrics import register_state_source
        from maestrano_integration.routes import register_preset_endpoint

        from . import checks, receivers, tasks, views  # noqa: F401  (checks, receivers, tasks)
        from .outbox import connect_receivers

        connect_receivers()
        from .metrics import sync_state

        register_state_source("sync", sync_state)
        register_preset_endpoint(
            namespace="maestrano_sync",
            name="connec-notifications",
            view=views.connec_notifications,
            path_of=lambda preset: preset.notifications_path,
        )
