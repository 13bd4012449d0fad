"""``manage.py sandbox_send_account_webhook``: a group cancels an app, or a member is removed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from maestrano_sandbox.account_webhooks import cancel_group_service, remove_user_from_group
from maestrano_sandbox.models import AccountWebhookDelivery, Group, PlatformUser, RegisteredApp


class Command(BaseCommand):
    help = (
        "Without --user: the group cancels the app (DELETE groups/<id>; the app leaves the "
        "group). With --user: the user leaves the group (DELETE groups/<gid>/users/<uid>)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app", required=True, help="api id of the app to notify")
        parser.add_argument("--group", required=True, help="cld-…")
        parser.add_argument("--user", help="usr-… (remove this member)")

    def handle(self, *args: Any, **options: Any) -> None:
        app = RegisteredApp.objects.filter(api_id=options["app"]).first()
        group = Group.objects.filter(uid=options["group"]).first()
        if app is None or group is None:
            raise CommandError(f"Unknown {'app' if app is None else 'group'}.")
        if options["user"]:
            user = PlatformUser.objects.filter(uid=options["user"]).first()
            if user is None:
                raise CommandError(f"Unknown user {options['user']}.")
            deliveries = remove_user_from_group(group=group, user=user, apps=[app])
        else:
            deliveries = [cancel_group_service(group=group, app=app)]
        for delivery in deliveries:
            line = (
                f"{delivery.method} {delivery.url}: {delivery.status} after "
                f"{delivery.attempts} attempt(s), last answer {delivery.response_status or '-'}"
            )
            if delivery.status == AccountWebhookDelivery.SUCCEEDED:
                self.stdout.write(self.style.SUCCESS(line))
            else:
                raise CommandError(f"{line} {delivery.last_error}".strip())
