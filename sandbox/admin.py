"""Admin of the emulated platform (its models live in the ``sandbox`` database)."""

from . import admin_connec  # noqa: F401  (Connec! models register themselves there)
