"""Test sessions in virtualenvs of their own: the suite under Django 6.x.

The project's own ``.venv`` (``make install``) runs Python 3.11 with Django 5.2 LTS.
Django 6 needs Python 3.12 or later, so it gets a session here: a Python 3.12
virtualenv with the newest release of a Django 6 series and, for everything else,
the exact versions of ``constraints.txt``.

``make test-django6`` runs the newest series (``nox -s "tests(django='6.1')"``);
``nox -s tests`` runs every series listed below. The interpreter is ``python3.12``
unless ``NOX_DJANGO6_PYTHON`` names another (the Makefile finds one under pyenv).
Extra arguments go to pytest: ``nox -s tests -- tests/accounts -x``. ``NOX_TEST_PART=1/2``
runs the first of two parts (``make test`` runs both halves at once, after
``nox --install-only``, each with ``--no-install``).
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
    version = session.run("python", "-m", "django", "--version", silent=True)
    if version is None:
        return  # --install-only: nothing runs
    if not version.strip().startswith(django + "."):
        session.error(f"Django {version.strip()} installed, {django}.x expected")
    args = session.posargs or ["-q", "-m", DEFAULT_MARKERS, "-p", "no:cacheprovider"]
    # NOX_TEST_PART=k/n runs the k-th of n parts of the suite (tests/conftest.py,
    # --test-part), with SQLite files of its own: `make test` runs two parts at once.
    part = os.environ.get("NOX_TEST_PART", "")
    label = part.replace("/", "-of-")
    session.run(
        "pytest",
        *args,
        *(["--test-part", part] if part else []),
        env={
            "DATABASE_URL": "",
            # Own SQLite files and sandbox keys: a run of the main suite may go on beside it.
            "VAR_DIR": str(Path(session.create_tmp()) / (f"var-{label}" if part else "var")),
            "TEST_DATABASE_SUFFIX": f"nox-django{django}{label}",
        },
    )
