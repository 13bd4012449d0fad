from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM (example application)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from maestrano_accounts.signals import charge_billed

        from . import mappers  # noqa: F401  (registers the sync mappers)
        from .credits import grant_sms

        charge_billed.connect(grant_sms, dispatch_uid="crm.credits.grant_sms")
