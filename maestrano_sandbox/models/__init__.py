"""The emulated platform's data, in the ``sandbox`` database alias.

Split by area so each part of the platform keeps its own module:
``core`` (registered apps, groups, users), ``identity`` (IdP sessions),
``account`` (bills, account webhooks), ``connec`` (data hub).
"""

from .core import Group, GroupMembership, PlatformUser, RegisteredApp

__all__ = ["Group", "GroupMembership", "PlatformUser", "RegisteredApp"]

# Each area module adds its models below (import * keeps this file conflict-free).
from .account import *  # noqa: F403
from .connec import *  # noqa: F403
from .identity import *  # noqa: F403
