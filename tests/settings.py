"""Settings of the test suite: the project's settings with the sandbox mounted.

The sandbox (the emulated platform) is the peer of the end-to-end tests, but the
project mounts it only when asked (``SANDBOX_ENABLED``, see config/settings.py).
Subprocesses the tests start (the Celery worker) inherit the variable.
"""

import os

os.environ.setdefault("SANDBOX_ENABLED", "true")
# The project's development set-up (config/settings.py defaults DEBUG to off): the sandbox
# mounted, its certificate trusted, plain-http cookies. pytest-django still runs each test
# with settings.DEBUG False; the processes the tests start inherit the variable.
os.environ.setdefault("DEBUG", "true")

from config.settings import *  # noqa: F403

# Models of adopters' shapes the example app has not (UUID and text keys): tests/shapes.
INSTALLED_APPS = [*INSTALLED_APPS, "tests.shapes"]  # noqa: F405
