"""The demo's processes start with DEBUG off: their environment must satisfy the settings."""

from __future__ import annotations

from crm.management.commands.run_demo import demo_environment
from tests.helpers.processes import run_python


def test_the_demo_environment_starts_the_project_with_the_sandbox_mounted(tmp_path):
    # What a fresh checkout's shell has: no SECRET_KEY, no DEBUG, nothing of the sandbox.
    base = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "HOME": str(tmp_path)}
    environment = demo_environment(base, var_dir=tmp_path)

    result = run_python(
        [
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; from django.urls import resolve; "
            "resolve('/sandbox/'); print(settings.DEBUG, settings.SECURE_SSL_REDIRECT)",
        ],
        env=environment,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"
    # The key is the demo's own, kept for the next start, and not the insecure default.
    key = (tmp_path / "demo_secret_key").read_text()
    assert environment["SECRET_KEY"] == key and len(key) >= 50
    assert demo_environment(base, var_dir=tmp_path)["SECRET_KEY"] == key


def test_the_demo_processes_run_with_debug_off_whatever_launched_them(tmp_path):
    """``make demo`` runs its set-up commands (run_demo among them) with ``DEBUG=true``;
    the server and the worker it starts still run with it off."""
    base = {"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path), "DEBUG": "true"}

    environment = demo_environment(base, var_dir=tmp_path)

    assert environment["DEBUG"] == "false"
    assert environment["SANDBOX_FORCE"] == "true"  # so the sandbox is mounted all the same
