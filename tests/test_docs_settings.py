"""docs/settings.md names every MAESTRANO key and every preset key, with its default."""

from __future__ import annotations

from pathlib import Path

import pytest

from maestrano_integration.conf import PRESET_DEFAULTS, all_defaults
from maestrano_integration.env import ENVIRONMENT_KEYS, environment_variable_name
from maestrano_sync.conf import SYNC_DEFAULTS

SETTINGS_DOC = (Path(__file__).resolve().parents[1] / "docs" / "settings.md").read_text()
#: Dict-valued keys documented as one value rather than key by key.
WHOLE_VALUES = {"PRESETS", "DEFAULT_PLAN", "PRODUCTS", "subscriptions"}


def flatten(values: dict, prefix: str = "") -> list[tuple[str, str, object]]:
    """(dotted key, last part, default) of every leaf."""
    leaves = []
    for key, value in values.items():
        if isinstance(value, dict) and key not in WHOLE_VALUES:
            leaves.extend(flatten(value, f"{prefix}{key}."))
        else:
            leaves.append((f"{prefix}{key}", key, value))
    return leaves


def section(heading: str) -> str:
    """The text of docs/settings.md from ``heading`` to the next heading."""
    start = SETTINGS_DOC.index(heading + "\n")
    rest = SETTINGS_DOC[start + len(heading) :]
    ends = [index for index in (rest.find("\n## "), rest.find("\n### ")) if index >= 0]
    return rest[: min(ends)] if ends else rest


def table_row(key: str, *, heading: str) -> str:
    """The table row of ``key`` (its first cell is the key in backticks) under ``heading``."""
    for line in section(heading).splitlines():
        if line.startswith(f"| `{key}` |"):
            return line
    raise AssertionError(f"docs/settings.md has no row for `{key}` under {heading!r}")


def documented_default(default: object) -> str:
    return f'`"{default}"`' if isinstance(default, str) else f"`{default!r}`"


@pytest.mark.parametrize(
    ("dotted", "key", "default"), flatten({**all_defaults(), "SYNC": SYNC_DEFAULTS})
)
def test_every_maestrano_key_is_documented_with_its_default(dotted, key, default):
    parent = dotted.rpartition(".")[0]
    heading = f"### `{parent}`" if parent else "## Top-level keys"
    row = table_row(key, heading=heading)
    if not isinstance(default, dict | list):
        assert documented_default(default) in row, f"{dotted}: {default!r} not in {row}"


@pytest.mark.parametrize(("dotted", "key", "default"), flatten(PRESET_DEFAULTS))
def test_every_preset_key_is_documented_with_its_default(dotted, key, default):
    row = table_row(dotted, heading="## Preset keys")
    if not isinstance(default, dict):
        assert documented_default(default) in row, f"{dotted}: {default!r} not in {row}"


@pytest.mark.parametrize(("dotted", "kind"), ENVIRONMENT_KEYS)
def test_every_environment_variable_is_documented(dotted, kind):
    assert f"| `{environment_variable_name(dotted)}` | `{dotted}` |" in SETTINGS_DOC
