"""Sandbox URLs: IdP, session check, Account API, pages of apps, groups and users."""

from django.urls import path as api_path

from . import views_account_api, views_config, views_idp, views_pages, views_sessions
from .safe_text import path  # every view but the Account API's refuses NUL and lone surrogates

urlpatterns = [
    # IdP (docs/protocol.md, 'Single sign-on')
    path("api/v1/auth/saml", views_idp.saml_sso, name="idp-sso"),
    path("api/v1/auth/saml/<str:uid>", views_sessions.session_check, name="session-check"),
    path("idp/login", views_idp.saml_login, name="idp-login"),
    path("apps/<str:api_id>/launch", views_idp.app_launch, name="app-launch"),
    path("app_logout", views_sessions.app_logout, name="app-logout"),
    path("app_access_unauthorized", views_sessions.app_access_unauthorized, name="unauthorized"),
    # Account API (docs/protocol.md, 'Account API')
    api_path(
        "api/v1/account/<str:resource>",
        views_account_api.collection,
        name="account-collection",
    ),
    api_path(
        "api/v1/account/<str:resource>/<str:uid>",
        views_account_api.member,
        name="account-member",
    ),
    # Developer platform: an app's marketplaces and their settings (docs/operations.md)
    path("api/config/v1/marketplaces", views_config.marketplaces, name="config-marketplaces"),
    # Pages
    path("apps/register", views_pages.app_register, name="app-register"),
    path("apps/<str:api_id>", views_pages.app_detail, name="app"),
    path(
        "apps/<str:api_id>/refresh-metadata",
        views_pages.app_refresh_metadata,
        name="app-refresh-metadata",
    ),
    path("groups/<str:uid>", views_pages.group_detail, name="group"),
    path("groups/<str:uid>/members", views_pages.group_add_member, name="group-add-member"),
    path(
        "groups/<str:uid>/members/<str:user_uid>/remove",
        views_pages.group_remove_member,
        name="group-remove-member",
    ),
    path("groups/<str:uid>/apps", views_pages.group_use_app, name="group-use-app"),
    path(
        "groups/<str:uid>/apps/<str:api_id>/cancel",
        views_pages.group_cancel_app,
        name="group-cancel-app",
    ),
    path("webhook-deliveries/<int:pk>/retry", views_pages.delivery_retry, name="delivery-retry"),
    path("users/<str:uid>", views_pages.user_detail, name="user"),
    path(
        "users/<str:uid>/logout-everywhere",
        views_sessions.logout_everywhere,
        name="user-logout-everywhere",
    ),
]
