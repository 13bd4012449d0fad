"""The sandbox run on its own (``SANDBOX_ONLY=true``, docs/install.md section 9)."""

from __future__ import annotations

import sys

from tests.helpers.adoption import ROOT, clean_environment, run


def test_a_sandbox_only_command_does_not_warn_about_the_app_presets_credentials(tmp_path):
    env = {
        **clean_environment(),
        "SANDBOX_ONLY": "true",
        "DEBUG": "true",
        "VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }

    output = run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env)

    assert "System check identified no issues" in output, output
