"""Fixtures of the sandbox's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.app_receiver import AppReceiver, app_receiver


@pytest.fixture
def receiver() -> Iterator[AppReceiver]:
    """An app's endpoints on a free local port, recording what the sandbox sends them."""
    with app_receiver() as state:
        yield state
