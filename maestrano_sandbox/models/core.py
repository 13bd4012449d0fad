"""Registered applications, groups (customer accounts), users and their memberships."""

from __future__ import annotations

import secrets

from django.db import models


def new_uid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_group_uid() -> str:
    return new_uid("cld")


def new_user_uid() -> str:
    return new_uid("usr")


class RegisteredApp(models.Model):
    """An integrated application, as the platform knows it (api id/key, host, paths)."""

    api_id = models.CharField(max_length=100, unique=True)
    api_key = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    app_host = models.URLField(help_text="Base URL of the application, e.g. http://127.0.0.1:8000")
    init_path = models.CharField(max_length=255, default="/maestrano/auth/saml/init")
    consume_path = models.CharField(max_length=255, default="/maestrano/auth/saml/consume")
    groups_path = models.CharField(max_length=255, default="/maestrano/account/groups/:id")
    group_users_path = models.CharField(
        max_length=255, default="/maestrano/account/groups/:group_id/users/:id"
    )
    notifications_path = models.CharField(max_length=255, default="/maestrano/connec/notifications")
    subscriptions = models.JSONField(default=dict, blank=True)
    metadata_path = models.CharField(max_length=255, default="/maestrano/metadata")
    metadata = models.JSONField(default=dict, blank=True, help_text="Last metadata fetched")
    # "sha256" (2048-bit key) or "sha1" (the historical 1024-bit rsa-sha1 setup).
    signature_algorithm = models.CharField(max_length=10, default="sha256")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["api_id"]

    def __str__(self) -> str:
        return self.name or self.api_id

    def url(self, path: str) -> str:
        return self.app_host.rstrip("/") + path

    @property
    def acs_url(self) -> str:
        return self.url(self.consume_path)


class Group(models.Model):
    """A customer account (``cld-…``): a billing entity and a collaboration group."""

    uid = models.CharField(max_length=100, unique=True, default=new_group_uid)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    currency = models.CharField(max_length=3, default="AUD")
    timezone = models.CharField(max_length=64, default="Australia/Sydney")
    country = models.CharField(max_length=2, default="AU")
    city = models.CharField(max_length=100, blank=True, default="Sydney")
    free_trial_end_at = models.DateTimeField(null=True, blank=True)
    has_credit_card = models.BooleanField(default=False)
    apps = models.ManyToManyField(RegisteredApp, related_name="groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["uid"]

    def __str__(self) -> str:
        return f"{self.name} ({self.uid})"


class PlatformUser(models.Model):
    """A marketplace user (``usr-…``)."""

    uid = models.CharField(max_length=100, unique=True, default=new_user_uid)
    name = models.CharField(max_length=100, help_text="First name")
    surname = models.CharField(max_length=100, blank=True)
    email = models.EmailField()
    country = models.CharField(max_length=2, default="AU")
    company_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["uid"]

    def __str__(self) -> str:
        return f"{self.name} {self.surname} ({self.uid})".strip()

    def virtual_uid(self, group: Group) -> str:
        return f"{self.uid}.{group.uid}"

    def virtual_email(self, group: Group) -> str:
        return f"{self.uid}.{group.uid}@mail.maestrano.com"


class GroupMembership(models.Model):
    ROLES = ["Guest", "Member", "Power User", "Admin", "Super Admin"]

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(PlatformUser, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, default="Guest", choices=[(r, r) for r in ROLES])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "user"], name="maestrano_sandbox_membership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user.uid} in {self.group.uid} ({self.role})"
