"""An anonymous request never makes the sandbox IdP write a key pair (only set-up does)."""

from __future__ import annotations

import requests

TIMEOUT = 10


def test_a_launch_without_set_up_keys_answers_503_and_writes_nothing(platform, tmp_path):
    platform.add_member(group_uid="cld-nokeys", user_uid="usr-nokeys", role="Admin")
    empty = tmp_path / "not-set-up"
    platform.settings.MAESTRANO_SANDBOX = {**platform.settings.MAESTRANO_SANDBOX, "DATA_DIR": empty}

    response = requests.get(
        f"{platform.sandbox_url}/apps/{platform.api_id}/launch",
        params={"user": "usr-nokeys", "group": "cld-nokeys"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 503
    assert "demo_setup" in response.text
    assert not empty.exists() or not list(empty.rglob("*.pem"))
