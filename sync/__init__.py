"""Two-way, ID-mapped data sync of local models with Connec!.

``from sync import registry`` then ``@registry.register(Model)`` on a
:class:`sync.mappers.Mapper` subclass; ``sync.register`` is the same decorator.
"""

from typing import Any


def register(model: Any) -> Any:
    """Shortcut for ``sync.registry.register`` (importable before apps are ready)."""
    from .registry import registry

    return registry.register(model)
