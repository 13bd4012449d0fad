"""benchmarks/sso_consume.py runs and reports what issue readers compare: a few logins
through the project's WSGI application (the default) and through Django's test client,
each ending with its JSON line. Times are not checked here (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "driver",
    "consume_p50_ms_sha1",
    "consume_p50_ms_sha256",
    "consume_p99_ms_sha256",
    "overhead_sha1",
    "overhead_sha256",
    "overhead_vs_bare_validation",
    "queries_per_repeat_login",
}


def run_benchmark(tmp_path: Path, *options: str) -> tuple[str, dict]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "MAESTRANO_", "SANDBOX_", "DATABASE_"))
    }
    environment["TMPDIR"] = str(tmp_path)
    completed = subprocess.run(
        [sys.executable, "benchmarks/sso_consume.py", "--iterations", "3", *options],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    return "\n".join(lines[:-1]), json.loads(lines[-1])


@pytest.mark.parametrize(
    ("options", "driver", "title"),
    [
        ((), "wsgi", "through the WSGI application"),
        (("--test-client",), "test_client", "through Django's test client"),
    ],
)
def test_the_sso_benchmark_logs_in_through_the_chosen_driver(tmp_path, options, driver, title):
    table, result = run_benchmark(tmp_path, *options)
    assert title in table
    assert KEYS <= set(result)
    assert result["driver"] == driver
    # Every login of the run was a 303 then a 302 (the script asserts both); a repeat
    # login stays within its budget of statements.
    assert 1 <= result["queries_per_repeat_login"] <= 8
    assert result["consume_p50_ms_sha256"] > 0


@pytest.mark.parametrize(
    ("options", "synchronous"),
    [((), False), (("--synchronous-commit",), True), (("--no-synchronous-commit",), False)],
)
def test_the_sso_benchmark_measures_the_recipes_commit_unless_asked(tmp_path, options, synchronous):
    """The production environment (docs/deploy.md) relaxes a repeat login's commit: the
    benchmark measures that by default, and the apps' durable default on request."""
    table, result = run_benchmark(tmp_path, *options)
    assert result["repeat_login_synchronous_commit"] is synchronous
    expected = "synchronous" if synchronous else "without waiting for the flush"
    assert f"repeat logins' commit {expected}" in table
