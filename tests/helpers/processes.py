"""The project's own Python in a subprocess, and free local ports, for the tests that need them.

A test that starts ``manage.py``, gunicorn or a short script with an environment of its own
runs it here: in the checkout's root, with the interpreter running the tests, its output
captured as text.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A local TCP port nothing listens on (at the moment of the call)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_python(
    arguments: Sequence[str], *, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python *arguments`` in the checkout's root; the caller checks the exit status."""
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
