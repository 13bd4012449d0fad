"""A project outside this checkout: the wheel in a fresh virtualenv, docs/install.md applied.

Shared by ``tests/test_install_into_new_project.py`` and
``tests/test_adopt_existing_project.py``. The dependencies come from this
project's virtualenv through a ``.pth`` file: no network.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
INSTALL_DOC = ROOT / "docs" / "install.md"
#: Its section "In your project's tests": the test settings, conftest and tests of an adopter.
SANDBOX_DOC = ROOT / "docs" / "sandbox.md"
#: What the wheel is built from (see [tool.setuptools] in pyproject.toml).
PACKAGE_SOURCES = [
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "maestrano_integration",
    "maestrano_accounts",
    "maestrano_sync",
    "maestrano_sandbox",
]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
EXPORT = re.compile(r'^export (\w+)="([^"]*)"', re.M)


def doc_blocks(doc: Path = INSTALL_DOC) -> list[tuple[str, str]]:
    """(first line, code) of every fenced block of ``doc`` (docs/install.md)."""
    blocks = []
    for _language, code in FENCE.findall(doc.read_text()):
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


def build_wheel(tmp_path_factory) -> Path:
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


def make_virtualenv(tmp_path_factory, wheel: Path) -> Path:
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


def apply_install_doc(project: Path, doc: Path = INSTALL_DOC) -> list[str]:
    """Append/create files as the blocks of ``doc`` (docs/install.md) say; returns what was
    applied."""
    applied = []
    for first, code in doc_blocks(doc):
        match = re.fullmatch(r"# (add to|create) (\S+)", first)
        if match is None:
            continue
        action, name = match.groups()
        target = project / name
        if action == "create":
            assert not target.exists(), f"the doc creates {name}, which startproject made"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
        else:
            assert target.exists(), f"the doc adds to {name}, which startproject did not make"
            target.write_text(target.read_text() + "\n\n" + code)
        applied.append(f"{action} {name}")
    return applied


@contextmanager
def running_server(
    command: list[str], *, cwd: Path, env: dict[str, str], url: str, timeout: float = 60
) -> Iterator[subprocess.Popen]:
    """Start ``command`` (a web server), wait until ``url`` answers, stop it afterwards.

    The server's output goes to a file, never to a pipe nobody reads (a server blocks
    once a pipe is full); the end of it is shown when the test fails.
    """
    descriptor, log_name = tempfile.mkstemp(prefix="server-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(descriptor, "w") as log:
        server = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def tail() -> str:
        return log_path.read_text(errors="replace")[-6000:]

    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(url, timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, tail()
                assert time.monotonic() < deadline, f"{url} did not start:\n{tail()}"
                time.sleep(0.2)
        try:
            yield server
        except BaseException:
            print(f"--- output of {' '.join(command)} ---\n{tail()}")
            raise
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log_path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of the reusable apps (a fixture: tests/conftest.py loads this module)."""
    return build_wheel(tmp_path_factory)


@pytest.fixture(scope="module")
def virtualenv(tmp_path_factory, wheel) -> Path:
    """A fresh virtualenv with the wheel installed (a fixture)."""
    return make_virtualenv(tmp_path_factory, wheel)
