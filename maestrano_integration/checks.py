"""System checks: report a misconfigured preset at start-up, not at the first login."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .conf import CREATION_MODES, all_presets, maestrano_settings
from .env import environment_variable_name


def _hint(preset_name: str, dotted_key: str, *, is_default: bool) -> str:
    path = "".join(f"[{part!r}]" for part in dotted_key.split("."))
    where = f"MAESTRANO['PRESETS'][{preset_name!r}]{path}"
    if is_default:
        return f"Set {environment_variable_name(dotted_key)} in the environment, or {where}."
    return f"Set {where} in your settings."


def _certificate_error(pem: str) -> str | None:
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError as error:
        return str(error) or "not a PEM certificate"
    return None


@checks.register("maestrano")
def check_presets(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    presets = all_presets()
    default_name = maestrano_settings.DEFAULT_PRESET
    if maestrano_settings.PRESETS and default_name not in maestrano_settings.PRESETS:
        messages.append(
            checks.Error(
                f"MAESTRANO['DEFAULT_PRESET'] is {default_name!r} but no preset has that name.",
                hint="Name one of MAESTRANO['PRESETS'] in MAESTRANO['DEFAULT_PRESET'].",
                id="maestrano.E006",
            )
        )
    for preset in presets:
        default = preset.is_default
        if not preset.api_id:
            messages.append(
                checks.Error(
                    f"Maestrano preset {preset.name!r} has no api id.",
                    hint=_hint(preset.name, "api.id", is_default=default),
                    id="maestrano.E001",
                )
            )
        if not preset.api_key:
            messages.append(
                checks.Error(
                    f"Maestrano preset {preset.name!r} has no api key.",
                    hint=_hint(preset.name, "api.key", is_default=default),
                    id="maestrano.E002",
                )
            )
        if preset.creation_mode not in CREATION_MODES:
            messages.append(
                checks.Error(
                    f"Maestrano preset {preset.name!r} has an unknown SSO creation mode "
                    f"{preset.creation_mode!r}.",
                    hint="Use 'real' or 'virtual'. "
                    + _hint(preset.name, "sso.creation_mode", is_default=default),
                    id="maestrano.E003",
                )
            )
        if preset.sso_enabled:
            if not preset.x509_certificate:
                messages.append(
                    checks.Error(
                        f"Maestrano preset {preset.name!r} has SSO enabled but no IdP certificate.",
                        hint="Give the IdP's PEM certificate (text or file path). "
                        + _hint(preset.name, "sso.x509_certificate", is_default=default),
                        id="maestrano.E004",
                    )
                )
            else:
                error = _certificate_error(preset.x509_certificate)
                if error:
                    messages.append(
                        checks.Error(
                            f"Maestrano preset {preset.name!r}: the IdP certificate cannot be "
                            f"parsed ({error}).",
                            hint="Paste the whole PEM block, from -----BEGIN CERTIFICATE----- "
                            "to -----END CERTIFICATE-----, or give the path of a PEM file. "
                            + _hint(preset.name, "sso.x509_certificate", is_default=default),
                            id="maestrano.E005",
                        )
                    )
    return messages
