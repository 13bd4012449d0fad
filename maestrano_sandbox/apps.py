from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "maestrano_sandbox"
    verbose_name = "Maestrano sandbox (emulated platform)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the deployment check)
