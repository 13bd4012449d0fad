"""SSO URLs (init, consume, logout) per preset, the company switcher and the dashboard.

Included at the site root. The default preset answers at the plain paths
(``/maestrano/auth/saml/init``), every preset at ``/maestrano/<preset>/...``.
"""

from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("maestrano/auth/saml/init", views.sso_init, name="sso-init"),
    path("maestrano/auth/saml/consume", views.sso_consume, name="sso-consume"),
    path("maestrano/auth/saml/complete", views.sso_complete, name="sso-complete"),
    path("maestrano/logout", views.sso_logout, name="sso-logout"),
    path("maestrano/switch-company", views.switch_company, name="switch-company"),
    path("maestrano/<slug:preset>/auth/saml/init", views.sso_init, name="sso-init-preset"),
    path(
        "maestrano/<slug:preset>/auth/saml/consume",
        views.sso_consume,
        name="sso-consume-preset",
    ),
    path("maestrano/<slug:preset>/logout", views.sso_logout, name="sso-logout-preset"),
    path("dashboard/", views.dashboard, name="dashboard"),
]
