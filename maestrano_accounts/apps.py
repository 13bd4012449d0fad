from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Companies, platform identities, SSO, account webhooks and billing.

    Every name it takes starts with ``maestrano``, so that a project's own ``accounts`` app
    lives beside it.
    """

    name = "maestrano_accounts"
    label = "maestrano_accounts"
    verbose_name = _("Maestrano accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from maestrano_integration.metrics import register_state_source
        from maestrano_integration.routes import register_preset_endpoint, register_routes

        # Imported here, not at the top: they use models, which are not loaded yet
        # when Django imports this module.
        from . import (  # noqa: F401  (checks register themselves)
            checks,
            last_login,
            urls,
            views,
            webhooks,
        )
        from .billing import receivers
        from .billing.metrics import billing_state

        receivers.connect()  # billing reacts to the account signals (and its tasks register)
        # last_login written by one kept UPDATE instead of Django's save() (last_login.py).
        last_login.take_over_django_receiver()
        register_state_source("billing", billing_state)
        register_routes(namespace="maestrano_accounts", routes=urls.urlpatterns)
        register_preset_endpoint(
            namespace="maestrano_accounts",
            name="sso-init",
            view=views.sso_init,
            path_of=lambda preset: preset.init_path,
        )
        register_preset_endpoint(
            namespace="maestrano_accounts",
            name="sso-consume",
            view=views.sso_consume,
            path_of=lambda preset: preset.consume_path,
        )
        register_preset_endpoint(
            namespace="maestrano_account_webhooks",
            name="group",
            view=webhooks.group_deleted,
            path_of=lambda preset: preset.groups_path,
            placeholders={"id": "group_id"},
        )
        register_preset_endpoint(
            namespace="maestrano_account_webhooks",
            name="group-user",
            view=webhooks.group_user_deleted,
            path_of=lambda preset: preset.group_users_path,
            placeholders={"group_id": "group_id", "id": "user_id"},
        )
