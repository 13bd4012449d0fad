"""Forms of the reusable sync app, for an adopter's own pages (the example project uses them)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .company_settings import (
    SettingsRefused,
    allowed_directions,
    policy_for,
    update_sync_settings,
)
from .models import SyncSettingsChange
from .registry import registry

DIRECTION_PREFIX = "direction_"


class CompanySyncSettingsForm(forms.Form):
    """A company's sync settings: on/off, a direction per entity, the import's start date.

    ``CompanySyncSettingsForm(data, company=company)``; each entity offers only
    the directions its mapper allows. :meth:`save` goes through
    :func:`maestrano_sync.company_settings.update_sync_settings` (checked, recorded,
    effects started).
    """

    enabled = forms.BooleanField(
        required=False,
        label=_("Sync with Connec!"),
        help_text=_("Off: nothing is sent or applied; changes wait and go when it is on again."),
    )
    import_since = forms.DateField(
        required=False,
        label=_("Import records changed since"),
        help_text=_("Empty: every record. Moving it earlier imports the older records."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, company: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.company = company
        policy = policy_for(company_id=company.pk)
        self.fields["enabled"].initial = policy.enabled
        self.fields["import_since"].initial = policy.import_since
        for entity in registry.dependency_order():
            self.fields[DIRECTION_PREFIX + entity] = forms.ChoiceField(
                label=entity.replace("_", " ").capitalize(),
                choices=[(d.value, d.label) for d in allowed_directions(entity)],
                initial=policy.direction(entity).value,
            )

    def direction_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith(DIRECTION_PREFIX)]

    def save(self, *, changed_by: Any = None) -> SyncSettingsChange | None:
        """Apply the settings; ``None`` when nothing changed or it was refused (see errors)."""
        data = self.cleaned_data
        directions = {
            name.removeprefix(DIRECTION_PREFIX): value
            for name, value in data.items()
            if name.startswith(DIRECTION_PREFIX)
        }
        try:
            return update_sync_settings(
                company=self.company,
                changed_by=changed_by,
                enabled=data["enabled"],
                directions=directions,
                import_since=data["import_since"],
            )
        except SettingsRefused as error:
            self.add_error(None, str(error))
            return None
