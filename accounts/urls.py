"""SSO URLs (init, consume, logout) per preset. Included at the site root."""

urlpatterns: list = []
