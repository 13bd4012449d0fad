"""Signals other apps hook into (billing, initial import, the adopter's own steps).

``company_created`` is sent once, after the transaction that created the
company has committed, with ``sender=Company`` and keyword arguments
``company`` (the new :class:`maestrano_accounts.models.Company`), ``preset`` (its
:class:`maestrano_integration.conf.Preset`) and ``attributes`` (the
:class:`maestrano_integration.saml.SsoAttributes` of the login that created it).
Receivers should enqueue work (Celery) rather than call the platform inline, so
a login is never blocked.

``company_reactivated`` is sent, with the same arguments and after commit too,
when an SSO login re-opens a company that a group DELETE webhook had cancelled
(the group subscribed again): billing may restart a subscription there.

``company_cancelled`` is sent after commit when a group DELETE webhook cancels a
company (``company``, ``preset``): the place for an adopter's own deletion steps
(archive data, stop jobs). Nothing of ours is deleted.

``member_added`` is sent after commit when an SSO login gives a user an active
membership they did not have (a new member, or one removed earlier coming back):
``company``, ``user``, ``membership``, ``preset``.

``member_removed`` is sent after commit when a group-user DELETE webhook removes
a member (``company``, ``user``, ``membership``, ``preset``).

Billing reacts to all of them (``maestrano_accounts.billing.receivers``, connected in
``AccountsConfig.ready()``); accounts itself never calls billing.

A repeated webhook that changes nothing sends nothing.
"""

from django.dispatch import Signal

company_created = Signal()
company_reactivated = Signal()
company_cancelled = Signal()
member_added = Signal()
member_removed = Signal()
