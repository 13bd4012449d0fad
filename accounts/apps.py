from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Companies, platform identities, SSO, account webhooks and billing.

    The label is namespaced so that a project's own ``accounts`` app can live beside it.
    """

    name = "accounts"
    label = "maestrano_accounts"
    verbose_name = "Maestrano accounts"
    default_auto_field = "django.db.models.BigAutoField"
