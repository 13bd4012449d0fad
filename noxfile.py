"""Test sessions in virtualenvs of their own: the suite under Django 6.x.

The project's own ``.venv`` (``make install``) runs Python 3.11 with Django 5.2 LTS.
Django 6 needs Python 3.12 or later, so it gets a session here: a Python 3.12
virtualenv with the newest release of a Django 6 series and, for everything else,
the exact versions of ``constraints.txt``.

``make test-django6`` runs the newest series (``nox -s "tests(django='6.1')"``);
``nox -s tests`` runs every series listed below. The interpreter is ``python3.12``
unless ``NOX_DJANGO6_PYTHON`` names another (the Makefile finds one under pyenv).
Extra arguments go to pytest: ``nox -s tests -- tests/accounts -x``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.download_python = "never"
# The environment is kept between runs; pip only checks it against the constraints.
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).resolve().parent
PYTHON = os.environ.get("NOX_DJANGO6_PYTHON", "3.12")
#: Django 6 series under test; the newest patch release of each is installed.
DJANGO_SERIES = ["6.0", "6.1"]
#: Deselected by default: the tests that drive headless Chromium (e2e, and the adoption
#: test of an existing project) and those that start a real Celery worker. The main
#: suite runs them; the views, tasks and checks they go through are covered here by the
#: test-client and live-server tests, and they are the slowest part of the suite.
#: Pass ``-- -m ""`` to run them too.
DEFAULT_MARKERS = "not browser and not worker"


def constraints_without_django(session: nox.Session) -> Path:
    """constraints.txt minus its Django pin (the session installs its own Django)."""
    lines = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if not line.lower().startswith("django==")
    ]
    path = Path(session.create_tmp()) / "constraints.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@nox.session(python=PYTHON)
@nox.parametrize("django", DJANGO_SERIES)
def tests(session: nox.Session, django: str) -> None:
    """The test suite on SQLite under the newest Django ``django``.x."""
    constraints = constraints_without_django(session)
    session.install("-c", str(constraints), "-e", ".[dev]", f"Django~={django}.0")
    version = session.run("python", "-m", "django", "--version", silent=True).strip()
    if not version.startswith(django + "."):
        session.error(f"Django {version} installed, {django}.x expected")
    args = session.posargs or ["-q", "-m", DEFAULT_MARKERS, "-p", "no:cacheprovider"]
    session.run(
        "pytest",
        *args,
        env={
            "DATABASE_URL": "",
            # Own SQLite files and sandbox keys: a run of the main suite may go on beside it.
            "VAR_DIR": str(Path(session.create_tmp()) / "var"),
            "TEST_DATABASE_SUFFIX": f"nox-django{django}",
        },
    )
