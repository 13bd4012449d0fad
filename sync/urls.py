"""Connec! notification webhook URLs per preset. Included at the site root."""

urlpatterns: list = []
