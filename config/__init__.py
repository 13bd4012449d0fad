"""Django project of the example application (the demo and the test bed)."""

from .celery import app as celery_app

__all__ = ("celery_app",)
