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

# PostgreSQL test databases are flushed with DELETE rather than TRUNCATE after each
# transactional test (tests/backends/postgresql/base.py: the same empty tables, faster).
for _database in DATABASES.values():  # noqa: F405
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _database["ENGINE"] = "tests.backends.postgresql"

# Local users' passwords in tests are hashed with a fast hasher (Django's default
# PBKDF2 costs about 0.3 s a password on this machine); the SSO never hashes a password.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
