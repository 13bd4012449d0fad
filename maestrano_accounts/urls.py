"""Fixed routes of maestrano_accounts, served by ``maestrano_integration.urls`` (namespace
``maestrano_accounts``).

The SSO init and consume views are served at the paths each preset announces
(see :mod:`maestrano_accounts.apps`); these routes are the same for every preset.
"""

from django.urls import path

from . import views

urlpatterns = [
    path("maestrano/auth/saml/complete", views.sso_complete, name="sso-complete"),
    path("maestrano/logout", views.sso_logout, name="sso-logout"),
    path("maestrano/<slug:preset>/logout", views.sso_logout, name="sso-logout-preset"),
    path("maestrano/signed-out", views.signed_out, name="signed-out"),
    path("maestrano/switch-company", views.switch_company, name="switch-company"),
    path("dashboard/", views.dashboard, name="dashboard"),
]
