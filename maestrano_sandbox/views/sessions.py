"""Session check API (docs/protocol.md, 'Session check') and the
platform's logout / unauthorized pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from ..auth import authenticate_app
from ..models import PlatformSession, PlatformUser
from ..sessions import check_session, invalidate_user_sessions, iso_utc, recheck_time


@require_GET
def session_check(request: HttpRequest, uid: str) -> JsonResponse:
    """``GET api/v1/auth/saml/<uid>?session=…`` (app basic auth) → ``{"valid", "recheck"}``."""
    app = authenticate_app(request)
    if app is None:
        response = JsonResponse(
            {"valid": False, "errors": {"authentication": ["Invalid API token"]}}, status=401
        )
        response["WWW-Authenticate"] = 'Basic realm="maestrano"'
        return response
    valid = check_session(app=app, user_uid=uid, token=request.GET.get("session", ""))
    return JsonResponse({"valid": valid, "recheck": iso_utc(recheck_time())})


@require_POST
def logout_everywhere(request: HttpRequest, uid: str) -> HttpResponse:
    """The "log out everywhere" button of the user page."""
    user = get_object_or_404(PlatformUser, uid=uid)
    invalidate_user_sessions(user=user)
    return redirect("maestrano_sandbox:user", uid=uid)


@require_GET
def app_logout(request: HttpRequest) -> HttpResponse:
    """Where apps send users on logout (``{api.host}/app_logout?user_uid=…``).

    Closes the user's platform sessions, then sends the browser back to the home page
    of the app they last signed in to (at its registered host), which says they are
    signed out. A user with no session of any app gets the platform's own page.

    Only a top-level navigation logs out, as the app's redirect is: a request another site
    makes the browser send from within its page (an image, a frame, a script's fetch: Fetch
    Metadata's ``Sec-Fetch-Site: cross-site`` with another ``Sec-Fetch-Dest`` than
    ``document``) closes nothing and is answered 403. Whether a top-level navigation
    comes from the app or from another site's link, the request cannot tell (the app's
    redirect carries neither a referrer nor anything but the uid, docs/protocol.md,
    'Logout'): those log out, as documented.
    """
    if _embedded_by_another_site(request):
        return HttpResponse(
            "A logout is a page of its own, not part of another site's page: nothing closed.",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    uid = request.GET.get("user_uid", "")
    user = PlatformUser.objects.filter(uid=uid).first() if uid else None
    count = invalidate_user_sessions(user=user) if user else 0
    latest = (
        PlatformSession.objects.filter(user=user).select_related("app").order_by("-pk").first()
        if user
        else None
    )
    response: HttpResponse
    if latest is not None:
        response = redirect(latest.app.url("/"))
    else:
        context = {"user": user, "uid": uid, "count": count}
        response = render(request, "maestrano_sandbox/app_logout.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _embedded_by_another_site(request: HttpRequest) -> bool:
    """A request another site's page makes the browser send without navigating to it
    (Fetch Metadata; a browser that sends none, or a script, is not one)."""
    headers = request.headers
    return (
        headers.get("Sec-Fetch-Site") == "cross-site"
        and headers.get("Sec-Fetch-Dest", "document") != "document"
    )


@require_GET
def app_access_unauthorized(request: HttpRequest) -> HttpResponse:
    """Where apps send users they refuse (``{api.host}/app_access_unauthorized``)."""
    return render(request, "maestrano_sandbox/app_access_unauthorized.html", status=403)
