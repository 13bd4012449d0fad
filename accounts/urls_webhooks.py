"""Account webhook URLs (group and group-user DELETE) per preset. Included at the site root."""

urlpatterns: list = []
