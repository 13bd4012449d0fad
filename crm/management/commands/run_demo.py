"""Run the embedded demo: the development server and a Celery worker beside it.

``make demo`` calls this after ``demo_setup``. Background work (initial import,
pushes, notifications, billing calls) runs in the worker, so a login never waits
for Connec! or the Account API. The broker needs no service: kombu's filesystem
transport under ``var/broker/`` unless ``CELERY_BROKER_URL`` is set (e.g. Redis).
Both processes stop together: Ctrl-C, or either of them exiting, stops the other.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

#: The broker of the demo when ``CELERY_BROKER_URL`` is not set.
DEMO_BROKER_URL = "filesystem://"
ADMIN_USERNAME = "admin"


def ensure_demo_admin(*, credentials: Path) -> tuple[str, str]:
    """A superuser for ``/admin/`` of the demo; its password is kept in ``credentials``."""
    if credentials.exists():
        password = credentials.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        credentials.write_text(password + "\n")
        credentials.chmod(0o600)
    user_model = get_user_model()
    lookup = {user_model.USERNAME_FIELD: ADMIN_USERNAME}
    user = user_model._default_manager.filter(**lookup).first()
    if user is None:
        user = user_model(**lookup, email="admin@localhost")
    user.is_staff = user.is_superuser = user.is_active = True
    user.set_password(password)
    user.save()
    return ADMIN_USERNAME, password


def demo_secret_key(var_dir: Path) -> str:
    """The demo's own secret key: made once, kept in ``VAR_DIR/demo_secret_key`` (mode 600)."""
    path = var_dir / "demo_secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def demo_environment(base: Mapping[str, str], *, var_dir: Path) -> dict[str, str]:
    """The environment of the demo's server and worker processes.

    The demo shows the app's own error pages (not Django's technical ones) and keeps
    no SQL log in memory, so ``DEBUG`` is off, which config/settings.py treats as
    production: the demo brings its own secret key (kept under ``VAR_DIR``), plain
    http on localhost, and forces on the sandbox it embeds (a development tool,
    never mounted in production by default). ``DEBUG`` is off whatever ``base`` says
    (``make demo`` runs its set-up commands, this one included, with ``DEBUG=true``);
    the other values already set win.
    """
    environment = dict(base)
    if not environment.get("CELERY_BROKER_URL"):
        environment["CELERY_BROKER_URL"] = DEMO_BROKER_URL
    environment["DEBUG"] = "false"
    defaults = {
        "SESSION_COOKIE_SECURE": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SANDBOX_ENABLED": "true",
        "SANDBOX_FORCE": "true",
    }
    for name, value in defaults.items():
        environment.setdefault(name, value)
    if not environment.get("SECRET_KEY"):
        environment["SECRET_KEY"] = demo_secret_key(var_dir)
    return environment


class Command(BaseCommand):
    help = "Run the demo: development server and Celery worker, stopped together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        username, password = ensure_demo_admin(credentials=Path(settings.VAR_DIR) / "demo_admin")
        environment = demo_environment(os.environ, var_dir=Path(settings.VAR_DIR))
        self.stdout.write(
            f"  Admin of the demo: {settings.SITE_URL}/admin/  user {username}  "
            f"password {password}\n"
            f"  Background worker on {environment['CELERY_BROKER_URL']}\n"
        )
        schedule = Path(settings.VAR_DIR) / "celerybeat-schedule"
        commands = {
            "worker": [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--beat",
                f"--schedule={schedule}", "--pool=prefork", "--concurrency=2",
                "--loglevel=WARNING", "--without-gossip", "--without-mingle",
                "--without-heartbeat",
            ],
            "server": [
                sys.executable, "manage.py", "runserver", options["addrport"],
                "--insecure",  # static files without DEBUG
            ],
        }  # fmt: skip
        processes = {
            name: subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                command, cwd=settings.BASE_DIR, env=environment, start_new_session=True
            )
            for name, command in commands.items()
        }
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(p.poll() is None for p in processes.values()):
                time.sleep(0.3)
        finally:
            for name, process in processes.items():
                if process.poll() is None:
                    # The worker's main process shuts its pool down itself (warm shutdown);
                    # the server's reloader has a child: stop the whole group.
                    if name == "worker":
                        process.send_signal(signal.SIGTERM)
                    else:
                        os.killpg(process.pid, signal.SIGTERM)
            for name, process in processes.items():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                self.stdout.write(f"  {name} stopped (exit code {process.returncode}).")
