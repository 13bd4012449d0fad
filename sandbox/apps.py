from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "sandbox"
    verbose_name = "Maestrano sandbox (emulated platform)"
    default_auto_field = "django.db.models.BigAutoField"
