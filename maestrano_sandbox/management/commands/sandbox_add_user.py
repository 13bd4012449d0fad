"""``manage.py sandbox_add_user``: put a user in a group (both created as needed), scriptably."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from maestrano_sandbox import directory
from maestrano_sandbox.forms import GROUP_UID, USER_UID, XML_TEXT
from maestrano_sandbox.models import GroupMembership, RegisteredApp


class Command(BaseCommand):
    help = "Add a user to a group of the sandbox platform, creating the user and group if needed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group", required=True, help="cld-…")
        parser.add_argument("--user", required=True, help="usr-…")
        parser.add_argument("--email")
        parser.add_argument("--role", default="Member", choices=GroupMembership.ROLES)
        parser.add_argument("--name", help="First name")
        parser.add_argument("--surname")
        parser.add_argument("--group-name")
        parser.add_argument(
            "--app", action="append", default=[], help="api id of an app the group uses (repeat)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["group"].startswith("cld-") or not options["user"].startswith("usr-"):
            raise CommandError("Group uids start with cld- and user uids with usr-.")
        # The rules of the sign-in and member forms: uids that fit a URL segment, names a
        # SAML assertion can hold.
        checks = [(GROUP_UID, "group"), (USER_UID, "user")] + [
            (XML_TEXT, name) for name in ("name", "surname", "email", "group_name")
        ]
        for validator, name in checks:
            if options[name] is None:
                continue
            try:
                validator(options[name])
            except ValidationError as error:
                raise CommandError(f"--{name.replace('_', '-')}: {error.messages[0]}") from None
        apps = list(RegisteredApp.objects.filter(api_id__in=options["app"]))
        missing = set(options["app"]) - {app.api_id for app in apps}
        if missing:
            raise CommandError(f"Unknown app(s): {', '.join(sorted(missing))}")
        with transaction.atomic(using="sandbox"):
            group = directory.upsert_group(uid=options["group"], name=options["group_name"])
            user = directory.upsert_user(
                uid=options["user"],
                name=options["name"],
                surname=options["surname"],
                email=options["email"],
            )
            directory.set_membership(group=group, user=user, role=options["role"])
            for app in apps:
                directory.start_using_app(group=group, app=app)
        self.stdout.write(
            self.style.SUCCESS(f"{user.uid} is {options['role']} of {group.uid} ({group.name}).")
        )
