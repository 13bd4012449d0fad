from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Maestrano accounts"
    default_auto_field = "django.db.models.BigAutoField"
