"""Per-company sync settings and their history (docs/sync.md, 'Per-company sync settings').

Exported by :mod:`maestrano_sync.models`. Read
and change them through :mod:`maestrano_sync.company_settings`, never directly: the
service checks each direction against what the entity's mapper allows and
records who changed what.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["CompanySyncSettings", "SyncSettingsChange"]


class CompanySyncSettings(models.Model):
    """What one company syncs: on/off, a direction per entity, the initial import's start.

    No row means the defaults: sync on, every entity in the directions its
    mapper allows, no date limit. ``directions`` holds only the entities whose
    direction was chosen: ``{"people": "import", "items": "off"}``.
    """

    company = models.OneToOneField(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    enabled = models.BooleanField(default=True, help_text=_("Off: nothing pushed or applied"))
    directions = models.JSONField(
        default=dict, blank=True, help_text=_('{entity: "both" | "import" | "export" | "off"}')
    )
    import_since = models.DateField(
        null=True, blank=True, help_text=_("Import only Connec! records changed since this day")
    )
    pending_import = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Entities to import again (their import was switched on)"),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("company sync settings")
        verbose_name_plural = _("company sync settings")

    def __str__(self) -> str:
        return f"sync settings of {self.company_id}"


class SyncSettingsChange(models.Model):
    """One change of a company's sync settings: who, when, what (``{name: [before, after]}``)."""

    company = models.ForeignKey(
        "maestrano_accounts.Company", on_delete=models.CASCADE, related_name="+"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    changed_by_name = models.CharField(
        max_length=255, blank=True, default="", help_text=_("Kept when the user is deleted")
    )
    changed_at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["company", "changed_at"], name="sync_settings_change")]

    def __str__(self) -> str:
        return f"sync settings of {self.company_id} changed at {self.changed_at:%Y-%m-%d %H:%M}"
