"""Settings changed for one test and undone after it, without pytest: to ``start_platform``
what pytest-django's ``settings`` fixture is, on Django's ``override_settings``.

Imported by settings modules (through ``maestrano_sandbox.testing``): ``django.test`` is imported
only when a setting is changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from django.test.utils import override_settings


class SettingsOverrides:
    """Each attribute write overrides one of Django's settings (``override_settings``, which
    sends ``setting_changed`` as it does in a test) until :meth:`undo`; reads answer the
    settings as they are now."""

    _applied: list[override_settings]

    def __init__(self) -> None:
        object.__setattr__(self, "_applied", [])

    def __getattr__(self, name: str) -> Any:
        return getattr(settings, name)

    def __setattr__(self, name: str, value: Any) -> None:
        from django.test.utils import override_settings

        override = override_settings(**{name: value})
        override.enable()
        self._applied.append(override)

    def undo(self) -> None:
        """Restore every setting changed here, the last change first (the settings and
        their ``setting_changed`` receivers are back as they were before the first)."""
        while self._applied:
            self._applied.pop().disable()
