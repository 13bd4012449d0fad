"""Account webhook URLs (group and group-user DELETE) per preset. Included at the site root.

The default preset answers at ``/maestrano/account/...``, every preset (the
default too) at ``/maestrano/<preset>/account/...``: the paths of PROTOCOL.md §1
``webhook.account.groups_path`` and ``group_users_path``.
"""

from django.urls import path

from . import webhooks

app_name = "account_webhooks"

urlpatterns = [
    path(
        "maestrano/account/groups/<str:group_id>",
        webhooks.group_deleted,
        name="group",
    ),
    path(
        "maestrano/account/groups/<str:group_id>/users/<str:user_id>",
        webhooks.group_user_deleted,
        name="group-user",
    ),
    path(
        "maestrano/<slug:preset>/account/groups/<str:group_id>",
        webhooks.group_deleted,
        name="preset-group",
    ),
    path(
        "maestrano/<slug:preset>/account/groups/<str:group_id>/users/<str:user_id>",
        webhooks.group_user_deleted,
        name="preset-group-user",
    ),
]
