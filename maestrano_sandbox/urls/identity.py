"""Sandbox URLs: IdP, session check, Account API, pages of apps, groups and users."""

from django.urls import path as api_path

from ..safe_text import path  # every view but the Account API's refuses NUL and lone surrogates
from ..views import account_api, config, idp, pages, sessions

urlpatterns = [
    # IdP (docs/protocol.md, 'Single sign-on')
    path("api/v1/auth/saml", idp.saml_sso, name="idp-sso"),
    path("api/v1/auth/saml/<str:uid>", sessions.session_check, name="session-check"),
    path("idp/login", idp.saml_login, name="idp-login"),
    path("apps/<str:api_id>/launch", idp.app_launch, name="app-launch"),
    path("app_logout", sessions.app_logout, name="app-logout"),
    path("app_access_unauthorized", sessions.app_access_unauthorized, name="unauthorized"),
    # Account API (docs/protocol.md, 'Account API')
    api_path(
        "api/v1/account/<str:resource>",
        account_api.collection,
        name="account-collection",
    ),
    api_path(
        "api/v1/account/<str:resource>/<str:uid>",
        account_api.member,
        name="account-member",
    ),
    # Developer platform: an app's marketplaces and their settings (docs/operations.md)
    path("api/config/v1/marketplaces", config.marketplaces, name="config-marketplaces"),
    # Pages
    path("apps/register", pages.app_register, name="app-register"),
    path("apps/<str:api_id>", pages.app_detail, name="app"),
    path(
        "apps/<str:api_id>/refresh-metadata",
        pages.app_refresh_metadata,
        name="app-refresh-metadata",
    ),
    path("groups/<str:uid>", pages.group_detail, name="group"),
    path("groups/<str:uid>/members", pages.group_add_member, name="group-add-member"),
    path(
        "groups/<str:uid>/members/<str:user_uid>/remove",
        pages.group_remove_member,
        name="group-remove-member",
    ),
    path("groups/<str:uid>/apps", pages.group_use_app, name="group-use-app"),
    path(
        "groups/<str:uid>/apps/<str:api_id>/cancel",
        pages.group_cancel_app,
        name="group-cancel-app",
    ),
    path("webhook-deliveries/<int:pk>/retry", pages.delivery_retry, name="delivery-retry"),
    path("users/<str:uid>", pages.user_detail, name="user"),
    path(
        "users/<str:uid>/logout-everywhere",
        sessions.logout_everywhere,
        name="user-logout-everywhere",
    ),
]
