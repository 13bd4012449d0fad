"""The repository's own files, for tests that inspect the source tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Never part of the repository's content, whatever the checkout holds.
_NOT_SOURCE = {".git", ".venv", ".nox", "var", "dist", "build", "node_modules", "test-artifacts"}


def repository_files() -> list[str]:
    """Paths (relative, with ``/``) of the files git tracks or would track.

    Tracked plus untracked-but-not-ignored files, so a file being added counts; outside a
    git checkout (an unpacked sdist), every file below the root except build output.
    """
    if (ROOT / ".git").exists():
        result = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        names = [name for name in result.stdout.decode().split("\0") if name]
        return sorted(name for name in names if (ROOT / name).is_file())
    files = []
    for directory, subdirectories, filenames in os.walk(ROOT):
        subdirectories[:] = [
            d
            for d in subdirectories
            if d not in _NOT_SOURCE and d != "__pycache__" and not d.endswith(".egg-info")
        ]
        for filename in filenames:
            files.append((Path(directory) / filename).relative_to(ROOT).as_posix())
    return sorted(files)
