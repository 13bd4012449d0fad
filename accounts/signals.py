"""Signals other apps hook into (billing set-up, initial import).

``company_created`` is sent once, after the transaction that created the
company has committed, with ``sender=Company`` and keyword arguments
``company`` (the new :class:`accounts.models.Company`) and ``preset`` (its
:class:`maestrano_integration.conf.Preset`). Receivers should enqueue work
(Celery) rather than call the platform inline, so a login is never blocked.

``company_reactivated`` is sent, with the same arguments and after commit too,
when an SSO login re-opens a company that a group DELETE webhook had cancelled
(the group subscribed again): billing may restart a subscription there.

``company_cancelled`` is sent after commit when a group DELETE webhook cancels a
company (``company``, ``preset``): the place for an adopter's own deletion steps
(archive data, stop jobs). Nothing of ours is deleted.

``member_removed`` is sent after commit when a group-user DELETE webhook removes
a member (``company``, ``user``, ``membership``, ``preset``).

A repeated webhook that changes nothing sends nothing.
"""

from django.dispatch import Signal

company_created = Signal()
company_reactivated = Signal()
company_cancelled = Signal()
member_removed = Signal()
