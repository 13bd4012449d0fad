"""The production server recipe (``config/gunicorn.py``) boots and serves, with the worker's
loaded objects frozen out of the garbage collector's reach (docs/deploy.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tests.helpers.processes import ROOT, free_port, run_python

pytest.importorskip("gunicorn")

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py"]

#: Prints the worker's frozen object count after the recipe's hook ran (and loaded the URLconf).
FROZEN = """
import gc
import django
django.setup()
import runpy
recipe = runpy.run_path("config/gunicorn.py")
before = gc.get_freeze_count()
recipe["post_worker_init"](None)
print(before, gc.get_freeze_count())
"""


@pytest.fixture
def recipe_env(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "GUNICORN_ACCESS_LOG": "",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def test_the_recipe_serves_requests(recipe_env, tmp_path):
    """It answers, and its access log names the path without the query string (the SSO
    completion's carries a login ticket)."""
    access_log = tmp_path / "access.log"
    recipe_env["GUNICORN_ACCESS_LOG"] = str(access_log)
    port = free_port()
    server = subprocess.Popen(
        [*GUNICORN, "--bind", f"127.0.0.1:{port}", "config.wsgi"],
        cwd=ROOT,
        env=recipe_env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "gunicorn exited: a worker failed to boot"
            try:
                # A loaded machine may take a while to boot the worker behind the bound socket.
                response = requests.get(
                    f"http://127.0.0.1:{port}/health/live?ticket=tkt-secret-1", timeout=60
                )
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = access_log.read_text()
    assert '"GET /health/live HTTP/1.1" 200' in logged
    assert "tkt-secret-1" not in logged


def test_a_worker_freezes_what_it_loaded(recipe_env):
    result = run_python(["-c", FROZEN], env=recipe_env)
    assert result.returncode == 0, result.stderr
    before, after = map(int, result.stdout.split()[-2:])
    # Whatever was frozen before (an import may freeze a few hundred objects: seen with
    # Django 6.1's test environment), the hook froze the loaded worker's objects on top.
    assert after - before > 50_000
