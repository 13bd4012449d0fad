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

``charge_billed`` is sent by billing once per ad-hoc bill, when the platform is first
known to hold it (its create answered, or the bill found by its reference after a lost
answer): ``sender=AdHocCharge``, ``charge``, ``company``. The place to grant what was
bought (the example project adds the SMS of its "Buy 100 SMS" button). It is sent
*inside* the transaction that records the bill's id, so a grant written by a receiver
commits with it or not at all (a receiver that raises leaves the charge pending, and the
next attempt adopts the bill and sends the signal again); a committed grant is never
repeated, whatever the retries, repeats of the form or sweeps. Do only database work
there: queue anything slow with ``transaction.on_commit``. Not sent for a bill found
already cancelled; a bill cancelled later turns its charge ``cancelled`` (count grants
only for ``billing.services.BILLED_CHARGE_STATUSES``, docs/billing.md).

Billing reacts to all the others (``maestrano_accounts.billing.receivers``, connected
in ``AccountsConfig.ready()``); accounts itself never calls billing.

A repeated webhook that changes nothing sends nothing.
"""

from django.dispatch import Signal

company_created = Signal()
company_reactivated = Signal()
company_cancelled = Signal()
member_added = Signal()
member_removed = Signal()
charge_billed = Signal()
