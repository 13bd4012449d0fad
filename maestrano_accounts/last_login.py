"""The user's ``last_login`` on each login, written by one kept ``UPDATE``.

Django writes it with a receiver of ``user_logged_in``
(:func:`django.contrib.auth.models.update_last_login`): ``user.last_login = now`` and
``user.save(update_fields=["last_login"])``. Going through ``save()`` costs the ORM
more than the statement costs the database: on the repeat SSO login, about a tenth of
the whole login (docs/performance.md). When this app is ready it puts
:func:`update_last_login` in the place of Django's receiver (the same ``dispatch_uid``,
``"update_last_login"``, so that a project that disconnects Django's, as Django's
documentation shows, disconnects this one), only if Django's is connected then: list
``maestrano_accounts`` after ``django.contrib.auth`` in ``INSTALLED_APPS``, as usual,
else Django's stays.

It writes the same value to the same row in the same transaction. The ``UPDATE`` is
run directly only when nothing could tell the difference from ``save()``: no
``pre_save`` or ``post_save`` receiver for the user's class, no ``save()`` (or
``save_base``) of the project's own, ``last_login`` a column of the user's own table (no
multi-table inheritance), no new password waiting on the instance. Otherwise, and when
the row is not found (``save()`` then raises Django's own error), it calls
``save(update_fields=["last_login"])`` as Django does.

In a repeat SSO login the write is held (:func:`maestrano_accounts.sso_state.hold_login_write`)
and made once ``login()`` is done, in one statement with the identity's login time on
PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import update_last_login as django_update_last_login
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import FieldDoesNotExist
from django.db import models, router
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from maestrano_integration.kept_query import KeptUpdate

from . import sso_state

#: Django's ``dispatch_uid`` for its receiver, which this one takes over.
DISPATCH_UID = "update_last_login"
#: ``save()`` methods that write ``last_login`` as the kept ``UPDATE`` does.
_DJANGO_SAVES = (models.Model.save, AbstractBaseUser.save)


def update_last_login(sender: Any, user: Any, **kwargs: Any) -> None:
    """A ``user_logged_in`` receiver: ``user.last_login`` set to now and written, as
    Django's :func:`~django.contrib.auth.models.update_last_login` does."""
    user.last_login = timezone.now()
    model: type[models.Model] = type(user)
    write = _kept_write(model) if _saves_as_django_does(user) else None
    if write is None:
        user.save(update_fields=["last_login"])
        return
    alias = router.db_for_write(model, instance=user)
    prepared = write.prepare(
        where={user._meta.pk.name: user.pk},
        values={"last_login": user._meta.get_field("last_login").pre_save(user, False)},
        using=alias,
    )
    if sso_state.hold_login_write(prepared):
        return  # written with the repeat SSO login's own login times, once login() is done
    if not prepared.run():
        user.save(update_fields=["last_login"])  # no such row: Django's own DatabaseError


def _saves_as_django_does(user: Any) -> bool:
    """Whether ``user.save(update_fields=["last_login"])`` would do nothing but the
    ``UPDATE``: no receivers to send signals to, no save of the project's own, nothing
    else waiting to be written."""
    model = type(user)
    return (
        model.save in _DJANGO_SAVES
        and model.save_base is models.Model.save_base
        and getattr(user, "_password", None) is None
        and user.pk is not None
        and not user._state.adding
        and not pre_save.has_listeners(model)
        and not post_save.has_listeners(model)
    )


@functools.cache
def _kept_write(model: type[models.Model]) -> KeptUpdate | None:
    """The kept ``UPDATE`` of ``model``'s ``last_login`` by primary key, or ``None`` when
    the column is not in the model's own table."""
    concrete = model._meta.concrete_model
    if concrete is None:
        return None
    try:
        field = concrete._meta.get_field("last_login")
    except FieldDoesNotExist:
        return None
    if concrete._meta.parents or not isinstance(field, models.Field) or field.model is not concrete:
        return None
    return KeptUpdate(concrete, fields=("last_login",), where=(concrete._meta.pk.name,))


def take_over_django_receiver() -> bool:
    """Put :func:`update_last_login` in the place of Django's receiver, if Django's is the
    one connected under its ``dispatch_uid`` (not a project's own, nor none); whether it
    did."""
    if _connected_under(DISPATCH_UID) is not django_update_last_login:
        return False
    user_logged_in.disconnect(dispatch_uid=DISPATCH_UID)
    user_logged_in.connect(update_last_login, dispatch_uid=DISPATCH_UID)
    return True


def _connected_under(dispatch_uid: str) -> Any:
    """The receiver ``user_logged_in`` holds under ``dispatch_uid``, or ``None``. Django
    has no public way to ask: its list of ``(lookup key, receiver, ...)`` is read, and
    anything unexpected in it reads as ``None`` (Django's receiver then stays)."""
    with contextlib.suppress(TypeError, IndexError, ValueError):
        for entry in user_logged_in.receivers:
            (uid, _sender), receiver = entry[0], entry[1]
            if uid == dispatch_uid:
                return receiver() if isinstance(receiver, weakref.ReferenceType) else receiver
    return None
