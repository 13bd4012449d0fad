"""The distributions: what the wheel and the sdist carry, and what they leave out.

The sdist and the wheel are built the way ``make package`` builds them (the wheel from
the sdist, so the sdist must be complete), from a copy of the checkout's files so the
checkout stays clean. No build isolation: the backend comes from the dev dependencies
and the test needs no package index.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers.repository import ROOT, repository_files

#: The reusable apps, each a name of ours alone.
APPS = ("maestrano_integration", "maestrano_accounts", "maestrano_sync")
#: The top-level packages of the wheel: the apps, and the emulated platform that adopters'
#: test settings install as the peer of their tests (docs/sandbox.md).
PACKAGES = (*APPS, "maestrano_sandbox")


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("dist")
    source = work / "source"
    for relative in repository_files():
        target = source / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (work / "dist").glob("django_maestrano-*.whl")
    (sdist,) = (work / "dist").glob("django_maestrano-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def wheel_names(distributions) -> set[str]:
    with zipfile.ZipFile(distributions["wheel"]) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def sdist_names(distributions) -> set[str]:
    with tarfile.open(distributions["sdist"]) as archive:
        # Strip the leading "django_maestrano-<version>/".
        return {name.partition("/")[2] for name in archive.getnames() if "/" in name}


def package_files() -> set[str]:
    """The repository's files of the reusable packages (code, templates, py.typed...)."""
    return {
        name
        for name in repository_files()
        if name.split("/", 1)[0] in PACKAGES and "__pycache__" not in name
    }


def test_the_wheel_holds_exactly_the_reusable_apps_and_the_sandbox(wheel_names):
    top_level = {name.split("/", 1)[0] for name in wheel_names}
    assert top_level == {*PACKAGES, next(n for n in top_level if n.endswith(".dist-info"))}
    for left_out in ("config", "crm", "tests", "docs", "benchmarks", "templates"):
        assert left_out not in top_level
    # Every top-level name is ours, the sandbox's too: none takes a name a project's own
    # package or app is likely to have (a project's `sandbox` package hid the sandbox when it
    # was called so, and pytest stopped loading our plugin; docs/architecture.md).
    assert all(name.startswith("maestrano_") for name in top_level if ".dist-info" not in name)
    # So are the names Django looks up across all apps: template directories and template
    # tag libraries.
    for name in wheel_names:
        package, *rest = name.split("/")
        if rest[:1] == ["templates"] and len(rest) > 2:
            assert rest[1] == package, name
        if rest[:1] == ["templatetags"] and rest[1] != "__init__.py":
            assert rest[1].startswith("maestrano"), name
    payload = {name for name in wheel_names if ".dist-info/" not in name}
    assert payload == package_files()
    # Its pages' templates are the sandbox's own, not the example project's layout.
    assert "maestrano_sandbox/templates/maestrano_sandbox/base_sandbox.html" in wheel_names
    assert "maestrano_sandbox/testing/__init__.py" in wheel_names
    assert "maestrano_sandbox/pytest_plugin.py" in wheel_names


def test_installing_the_wheel_changes_no_projects_pytest(distributions, wheel_names):
    """The sandbox's pytest plugin is opt-in (``pytest_plugins`` in a conftest): no
    ``pytest11`` entry point loads it into every project that installs the package."""
    entry_points = [name for name in wheel_names if name.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(distributions["wheel"]) as archive:
        declared = "".join(archive.read(name).decode() for name in entry_points)
    assert "pytest11" not in declared


def test_the_wheel_is_typed_and_carries_its_templates_and_licence(wheel_names):
    for package in PACKAGES:
        assert f"{package}/py.typed" in wheel_names
    templates = {name for name in wheel_names if "/templates/" in name}
    assert templates, "the apps' templates are package data"
    assert templates == {name for name in package_files() if "/templates/" in name}
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names)


def test_the_wheel_metadata_uses_ranges_and_says_what_it_supports(distributions):
    with zipfile.ZipFile(distributions["wheel"]) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
    requirements = metadata.get_all("Requires-Dist")
    runtime = [r for r in requirements if "extra ==" not in r]
    assert runtime, requirements
    assert not [r for r in runtime if "==" in r], "runtime dependencies must be ranges"
    # The platform-facing endpoints are DRF views (maestrano_integration.platform_api):
    # DRF and drf-spectacular are runtime dependencies, used, and ranges like the others.
    assert {"djangorestframework", "drf-spectacular"} <= {
        r.split("<")[0].split(">")[0].strip().lower() for r in runtime
    }
    assert any(r.startswith("Django") and "<6." in r for r in runtime)
    classifiers = set(metadata.get_all("Classifier"))
    assert {"Framework :: Django :: 5.2", "Framework :: Django :: 6.0", "Typing :: Typed"} <= (
        classifiers
    )
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("Project-URL")


def test_the_sdist_carries_docs_tests_and_licence(sdist_names):
    assert {"LICENSE", "README.md", "pyproject.toml", "constraints.txt", "noxfile.py"} <= (
        sdist_names
    )
    tracked = set(repository_files())
    for folder in ("docs/", "tests/"):
        expected = {name for name in tracked if name.startswith(folder)}
        assert expected, folder
        assert expected <= sdist_names, sorted(expected - sdist_names)
    assert "docs/protocol.md" in sdist_names
    assert package_files() <= sdist_names
