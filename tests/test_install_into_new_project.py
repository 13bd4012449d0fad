"""docs/install.md, followed literally: the wheel in a fresh virtualenv and a new Django project.

The test builds a wheel of this project, installs it (without dependencies) into a
new virtualenv, runs ``django-admin startproject mysite`` there and applies the
code blocks of docs/install.md as written: a block whose first line is
``# add to <file>`` is appended to that file, ``# create <file>`` creates it, and
the ``# environment`` block gives the variables. Then ``check``, ``migrate`` and a
real server answering the metadata endpoint. The dependencies come from this
project's virtualenv through a ``.pth`` file: no network.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import pytest
import requests

from tests.helpers.certificates import make_key_pair

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
INSTALL_DOC = ROOT / "docs" / "install.md"
#: What the wheel is built from (see [tool.setuptools] in pyproject.toml).
PACKAGE_SOURCES = ["pyproject.toml", "README.md", "maestrano_integration", "accounts", "sync"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
EXPORT = re.compile(r'^export (\w+)="([^"]*)"', re.M)


def doc_blocks() -> list[tuple[str, str]]:
    """(first line, code) of every fenced block of docs/install.md."""
    blocks = []
    for _language, code in FENCE.findall(INSTALL_DOC.read_text()):
        first, _, _rest = code.partition("\n")
        blocks.append((first.strip(), code))
    return blocks


def documented_environment() -> dict[str, str]:
    block = next(code for first, code in doc_blocks() if first == "# environment")
    return dict(EXPORT.findall(block))


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of the reusable apps, built from a copy (the checkout stays clean)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in PACKAGE_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip"]
    run(
        # No build isolation: the build backend comes from the dev dependencies,
        # so the test needs no package index.
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work / "dist"),
            str(source),
        ],
        cwd=work,
        env=dict(os.environ),
    )
    (built,) = (work / "dist").glob("django_maestrano-*.whl")
    return built


@pytest.fixture(scope="module")
def virtualenv(tmp_path_factory, wheel) -> Path:
    """A fresh virtualenv with only the wheel installed; dependencies through a .pth file."""
    home = tmp_path_factory.mktemp("venv") / "env"
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        cwd=home,
        env=dict(os.environ),
    )
    site_packages = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            cwd=home,
            env=clean_environment(),
        ).strip()
    )
    (site_packages / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return home


def clean_environment() -> dict[str, str]:
    """This process's environment without what points at the checkout's project."""
    drop = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL", "VAR_DIR", "SITE_URL"}
    return {
        name: value
        for name, value in os.environ.items()
        if name not in drop and not name.startswith("MAESTRANO_")
    }


def apply_install_doc(project: Path) -> list[str]:
    """Append/create files as the doc's blocks say; returns what was applied."""
    applied = []
    for first, code in doc_blocks():
        match = re.fullmatch(r"# (add to|create) (\S+)", first)
        if match is None:
            continue
        action, name = match.groups()
        target = project / name
        if action == "create":
            assert not target.exists(), f"the doc creates {name}, which startproject made"
            target.write_text(code)
        else:
            assert target.exists(), f"the doc adds to {name}, which startproject did not make"
            target.write_text(target.read_text() + "\n\n" + code)
        applied.append(f"{action} {name}")
    return applied


def test_the_install_guide_works_in_a_new_django_project(tmp_path, virtualenv):
    python = str(virtualenv / "bin" / "python")
    env = clean_environment()

    # The apps come from the wheel, not from this checkout.
    location = run(
        [python, "-c", "import accounts, sync, maestrano_integration; print(accounts.__file__)"],
        cwd=tmp_path,
        env=env,
    )
    assert location.startswith(str(virtualenv)), location
    run(
        [
            python,
            "-c",
            "import importlib.resources as r; "
            "assert r.files('accounts').joinpath('migrations/0001_initial.py').is_file(); "
            "assert r.files('sync').joinpath('migrations/0001_initial.py').is_file(); "
            "assert r.files('accounts').joinpath('templates/accounts/sso_error.html').is_file()",
        ],
        cwd=tmp_path,
        env=env,
    )

    # django-admin startproject mysite
    run([python, "-m", "django", "startproject", "mysite"], cwd=tmp_path, env=env)
    project = tmp_path / "mysite"
    applied = apply_install_doc(project)
    assert applied == [
        "add to mysite/settings.py",
        "add to mysite/urls.py",
        "create mysite/celery.py",
        "add to mysite/__init__.py",
    ]

    certificate = tmp_path / "idp-certificate.pem"
    certificate.write_text(make_key_pair().certificate_pem)
    documented = documented_environment()
    assert {"MAESTRANO_API_ID", "MAESTRANO_API_KEY", "MAESTRANO_SSO_X509_CERTIFICATE"} <= set(
        documented
    )
    env.update(documented)
    env["MAESTRANO_SSO_X509_CERTIFICATE"] = str(certificate)  # the doc's path does not exist here

    check = run([python, "manage.py", "check"], cwd=project, env=env)
    assert "no issues" in check
    run([python, "manage.py", "migrate", "--no-input"], cwd=project, env=env)
    # The Celery app finds the apps' tasks, and the documented beat schedule names real ones.
    unknown = run(
        [
            python,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; from mysite import celery_app; "
            "celery_app.loader.import_default_modules(); "
            "print(sorted(entry['task'] for entry in settings.CELERY_BEAT_SCHEDULE.values() "
            "if entry['task'] not in celery_app.tasks))",
        ],
        cwd=project,
        env=env,
    )
    assert unknown.strip().splitlines()[-1] == "[]", unknown

    port = free_port()
    server = subprocess.Popen(
        [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/maestrano/metadata"
        deadline = time.monotonic() + 30
        while True:
            try:
                anonymous = requests.get(url, timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.communicate()[0]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        authenticated = requests.get(
            url, auth=(documented["MAESTRANO_API_ID"], documented["MAESTRANO_API_KEY"]), timeout=5
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)

    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "Invalid credentials"}
    assert authenticated.status_code == 200
    metadata = authenticated.json()
    assert metadata["api"]["id"] == documented["MAESTRANO_API_ID"]
    assert "key" not in metadata["api"]
    assert documented["MAESTRANO_API_KEY"] not in authenticated.text
    assert metadata["app"]["host"] == documented["MAESTRANO_APP_HOST"]
    assert metadata["sso"]["consume_path"] == "/maestrano/auth/saml/consume"
