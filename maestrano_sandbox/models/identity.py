"""Platform sessions: what the IdP opens at login and the session check answers for."""

from __future__ import annotations

import secrets

from django.db import models

from .core import Group, PlatformUser, RegisteredApp

__all__ = ["PlatformSession"]


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class PlatformSession(models.Model):
    """One login of a user, through a group, into an app (the SAML ``mno_session``).

    The app checks it (``GET api/v1/auth/saml/<uid>?session=…``) after each
    ``mno_session_recheck``; invalidating it here ("log out everywhere") makes
    the next check answer ``valid: false``.
    """

    token = models.CharField(max_length=64, unique=True, default=new_session_token)
    user = models.ForeignKey(PlatformUser, on_delete=models.CASCADE, related_name="sessions")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="sessions")
    app = models.ForeignKey(RegisteredApp, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField(auto_now_add=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user.uid} in {self.group.uid} via {self.app.api_id}"

    @property
    def is_valid(self) -> bool:
        return self.invalidated_at is None
