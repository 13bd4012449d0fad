"""IdP views: the SSO endpoint and its login page, the signed-response POST page, app launch."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import directory, idp
from ..forms import SsoLoginForm
from ..models import Group, GroupMembership, PlatformUser, RegisteredApp
from ..sessions import open_session

logger = logging.getLogger(__name__)
#: Signed cookie (sandbox paths only) of the AuthnRequest ids this browser signed in for.
ANSWERED_COOKIE = "sandbox_idp_answered"
MAX_ANSWERED = 10
ANSWERED_LIFETIME_SECONDS = 24 * 3600


def error_page(request: HttpRequest, error: idp.IdpError) -> HttpResponse:
    logger.warning("IdP refused a request", extra={"reason": error.message, "path": request.path})
    return render(
        request, "maestrano_sandbox/idp_error.html", {"message": error.message}, status=error.status
    )


def _login_page(
    request: HttpRequest,
    *,
    form: SsoLoginForm,
    authn: idp.AuthnRequestInfo,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "app": authn.app,
        "authn": authn,
        "users": PlatformUser.objects.order_by("uid")[:200],
        "groups": Group.objects.order_by("uid")[:200],
    }
    return render(request, "maestrano_sandbox/idp_login.html", context, status=status)


def _answered_requests(request: HttpRequest) -> list[str]:
    """Ids of the AuthnRequests this browser signed in for (newest last)."""
    value = request.get_signed_cookie(ANSWERED_COOKIE, default="", salt=ANSWERED_COOKIE) or ""
    return [request_id for request_id in value.split(" ") if request_id]


def _remember_answered(request: HttpRequest, response: HttpResponse, request_id: str) -> None:
    answered = [*_answered_requests(request), request_id][-MAX_ANSWERED:]
    response.set_signed_cookie(
        ANSWERED_COOKIE,
        " ".join(answered),
        salt=ANSWERED_COOKIE,
        max_age=ANSWERED_LIFETIME_SECONDS,
        path=reverse("maestrano_sandbox:home"),
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


@require_GET
def saml_sso(request: HttpRequest) -> HttpResponse:
    """The IdP SSO URL (docs/protocol.md, 'Init') (HTTP-Redirect binding). Shows the login page.

    Never cached, and a request this browser already signed in for (the browser's
    Back button after the login) sends it back to the app's home page rather than
    offering to sign in again: that answer could only be refused (the app accepts
    one answer per request).
    """
    try:
        authn = idp.parse_authn_request(saml_request=request.GET.get("SAMLRequest", ""))
        idp.signing_key_pair(authn.app)  # not set up: say so now, not after the form
    except idp.IdpError as error:
        return error_page(request, error)
    if authn.id in _answered_requests(request):
        back = redirect(authn.app.url("/"))
        back["Cache-Control"] = "no-store"
        return back
    group_uid = request.GET.get("group_id", "")
    initial = {
        "SAMLRequest": request.GET["SAMLRequest"],
        "RelayState": request.GET.get("RelayState", ""),
        "group_uid": group_uid,
    }
    response = _login_page(request, form=SsoLoginForm(initial=initial), authn=authn)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def saml_login(request: HttpRequest) -> HttpResponse:
    """The login page's submit: open a platform session and answer the auto-submit POST page."""
    try:
        authn = idp.parse_authn_request(saml_request=request.POST.get("SAMLRequest", ""))
    except idp.IdpError as error:
        return error_page(request, error)
    form = SsoLoginForm(request.POST)
    if not form.is_valid():
        return _login_page(request, form=form, authn=authn, status=400)
    try:
        idp.signing_key_pair(authn.app)  # before opening a session no response could carry
    except idp.IdpError as error:
        return error_page(request, error)
    with transaction.atomic(using="sandbox"):
        user = directory.upsert_user(**form.user_values())
        group = directory.upsert_group(**form.group_values())
        # A blank role keeps an existing member's role: signing in never promotes anyone.
        membership = GroupMembership.objects.filter(group=group, user=user).first()
        role = form.cleaned_data["role"] or (membership.role if membership else "Member")
        directory.set_membership(group=group, user=user, role=role)
        directory.start_using_app(group=group, app=authn.app)
        session = open_session(app=authn.app, user=user, group=group)
    try:
        xml = idp.build_signed_response(
            session=session,
            issuer=idp.idp_entity_id(request),
            in_response_to=authn.id,
            acs_url=authn.acs_url,
        )
    except idp.IdpError as error:
        return error_page(request, error)
    response = _post_page(
        request,
        app=authn.app,
        acs_url=authn.acs_url,
        xml=xml,
        relay_state=form.cleaned_data.get("RelayState") or "",
        user=user,
        group=group,
    )
    _remember_answered(request, response, authn.id)
    return response


def _post_page(
    request: HttpRequest,
    *,
    app: RegisteredApp,
    acs_url: str,
    xml: str,
    relay_state: str,
    user: PlatformUser,
    group: Group,
) -> HttpResponse:
    context = {
        "app": app,
        "acs_url": acs_url,
        "saml_response": idp.encode_response(xml),
        "relay_state": relay_state,
        "user": user,
        "group": group,
    }
    response = render(request, "maestrano_sandbox/saml_post.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def app_launch(request: HttpRequest, api_id: str) -> HttpResponse:
    """IdP-initiated SSO: "open the app as this user of this group" (no AuthnRequest).

    ``?user=usr-…&group=cld-…`` (GET, for scripts) or the same fields POSTed by
    the sandbox pages. The user must be a member of the group.
    """
    params = request.POST if request.method == "POST" else request.GET
    app = RegisteredApp.objects.filter(api_id=api_id).first()
    if app is None:
        return error_page(request, idp.UnknownApp(f"No application with api id {api_id!r}."))
    user_uid, group_uid = params.get("user", ""), params.get("group", "")
    membership = (
        GroupMembership.objects.select_related("user", "group")
        .filter(user__uid=user_uid, group__uid=group_uid)
        .first()
    )
    if membership is None:
        return error_page(
            request,
            idp.IdpError(
                (
                    f"User {user_uid} is not a member of group {group_uid}."
                    if user_uid and group_uid
                    else "Say who opens the app: a user and one of their groups "
                    "(?user=usr-…&group=cld-…)."
                ),
                status=404 if user_uid and group_uid else 400,
            ),
        )
    try:
        idp.signing_key_pair(app)  # before opening a session no response could carry
    except idp.IdpError as error:
        return error_page(request, error)
    with transaction.atomic(using="sandbox"):
        directory.start_using_app(group=membership.group, app=app)
        session = open_session(app=app, user=membership.user, group=membership.group)
    try:
        xml = idp.build_signed_response(session=session, issuer=idp.idp_entity_id(request))
    except idp.IdpError as error:
        return error_page(request, error)
    return _post_page(
        request,
        app=app,
        acs_url=app.acs_url,
        xml=xml,
        relay_state=params.get("RelayState", ""),
        user=membership.user,
        group=membership.group,
    )
