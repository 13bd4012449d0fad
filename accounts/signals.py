"""Signals other apps hook into (billing set-up, initial import).

``company_created`` is sent once, after the transaction that created the
company has committed, with ``sender=Company`` and keyword arguments
``company`` (the new :class:`accounts.models.Company`) and ``preset`` (its
:class:`maestrano_integration.conf.Preset`). Receivers should enqueue work
(Celery) rather than call the platform inline, so a login is never blocked.
"""

from django.dispatch import Signal

company_created = Signal()
