"""The developer platform's configuration endpoint: an app's marketplaces and their settings.

``GET /sandbox/api/config/v1/marketplaces`` with HTTP basic auth of a registered
app (api id and key) answers the presets that app should run with, in the shape
:mod:`maestrano_integration.devplatform` loads (docs/operations.md). The sandbox
is one marketplace, named ``maestrano``. A sandbox whose set-up command never made
the IdP key pair has no certificate to announce: it answers 503 with a JSON error
naming that command (:func:`maestrano_sandbox.idp.signing_key_pair`).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..auth import authenticate_app
from ..idp import NotSetUp, idp_entity_id, signature_algorithm, signing_key_pair
from ..models import RegisteredApp

MARKETPLACE = "maestrano"


def marketplace_for(request: HttpRequest, app: RegisteredApp) -> dict:
    host = idp_entity_id(request)
    return {
        "marketplace": MARKETPLACE,
        "environment": "test",
        "app": {"host": app.app_host.rstrip("/")},
        "api": {"id": app.api_id, "key": app.api_key, "host": host, "base": "/api/v1/"},
        "sso": {
            "enabled": True,
            "idp": host,
            "init_path": app.init_path,
            "consume_path": app.consume_path,
            "x509_certificate": signing_key_pair(app).certificate_pem,
            # An app registered with the historical rsa-sha1 signatures gets them accepted:
            # the apps refuse SHA-1 unless the preset allows it (docs/protocol.md, 'Consume').
            **({"allow_sha1": True} if signature_algorithm(app) == "sha1" else {}),
        },
        "connec": {"host": f"{host}/connec", "base_path": "/api/v2"},
        "webhooks": {
            "account": {
                "groups_path": app.groups_path,
                "group_users_path": app.group_users_path,
            },
            "connec": {
                "notifications_path": app.notifications_path,
                **({"subscriptions": app.subscriptions} if app.subscriptions else {}),
            },
        },
    }


@require_GET
@never_cache
def marketplaces(request: HttpRequest) -> JsonResponse:
    app = authenticate_app(request)
    if app is None:
        response = JsonResponse({"errors": {"authentication": ["Invalid API token"]}}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="maestrano"'
        return response
    try:
        marketplace = marketplace_for(request, app)
    except NotSetUp as error:
        return JsonResponse({"errors": {"setup": [error.message]}}, status=error.status)
    return JsonResponse({"marketplaces": [marketplace]})
