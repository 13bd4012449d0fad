"""The sandbox platform on a live server, and the app's preset wired to it.

The class ships with the sandbox (``maestrano_sandbox.testing``), so that adopters' tests use
the one these tests use; the ``platform`` fixture (tests/conftest.py) is ``maestrano_platform``.
"""

from __future__ import annotations

from maestrano_sandbox.testing import DEFAULT_PRESET, Platform

__all__ = ["DEFAULT_PRESET", "Platform"]
