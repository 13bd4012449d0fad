"""Two-way, ID-mapped data sync of local models with Connec!.

``from maestrano_sync import registry`` then ``@registry.register(Model)`` on a
:class:`maestrano_sync.mappers.Mapper` subclass; ``maestrano_sync.register`` is the same decorator.
"""

from typing import Any


def register(model: Any) -> Any:
    """Shortcut for ``maestrano_sync.registry.register`` (importable before apps are ready)."""
    from .registry import registry

    return registry.register(model)
