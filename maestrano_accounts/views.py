"""SSO views (init, consume, complete, logout), the company switcher and the dashboard.

Why consume does not log the user in itself
-------------------------------------------
The ACS is a **cross-site POST** from the platform's domain. Browsers do not
send ``SameSite=Lax`` cookies on it, so the consume request does not see the
browser's session: neither the AuthnRequest id stored by init (needed for
``InResponseTo``) nor an existing login. Logging in there would also set the
session cookie on a response the browser may treat as cross-site.

So consume validates everything that does not need the session (signature,
issuer, audience, destination, recipient, times, replay), stores the result
server-side under a one-time token (:class:`maestrano_accounts.models.SsoLoginTicket`)
and answers ``303 See Other`` to :func:`sso_complete`. The browser follows
with a top-level GET, which *does* carry Lax cookies; the completion view checks
``InResponseTo`` against the session, provisions the company and user, and
logs in. The token is single-use, expires in two minutes, and only completes
in the browser it was issued to: for SP-initiated logins the browser session
that started it; for IdP-initiated logins the browser that posted the response,
which the consume view gives a short-lived ``SameSite=Lax``, HttpOnly nonce
cookie (a Lax cookie set on a cross-site top-level POST is stored, and sent
on the top-level GET of the redirect). Without that, a completion link taken
by someone else would log a victim's browser into the taker's account.
"""

from __future__ import annotations

import logging
from typing import cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.core.exceptions import DisallowedRedirect
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
)
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from maestrano_integration import metrics
from maestrano_integration.auth import request_address
from maestrano_integration.conf import ImproperlyConfiguredPreset, Preset, get_preset
from maestrano_integration.request_text import form_problem
from maestrano_integration.routes import kept_resolve_url, served_path
from maestrano_integration.saml import (
    SamlConfigurationError,
    SamlValidationError,
    SsoAttributes,
    build_authn_request,
    validate_response,
)
from maestrano_integration.setting_types import InvalidSettingType

from . import services, sso_state
from .adapter import get_adapter
from .backends import SSO_LOGIN_ATTRIBUTE, authenticate_sso
from .middleware import maestrano_session_exempt
from .models import Company, Membership
from .pages import local_url, render_page, sso_misconfigured_page
from .permissions import current_role, role_at_least
from .selectors import current_company, make_current_company, session_companies
from .sessions import platform_session, platform_session_preset, store_platform_session

logger = logging.getLogger(__name__)

#: Shown on the landing page once the platform has signed the user out.
SIGNED_OUT_MESSAGE = _("You are signed out.")
#: The ACS's form field, and the completion's ticket (query and confirmation form): bearer
#: secrets (a signed login, a login waiting for its browser), starred in Django's error
#: reports (``sensitive_post_parameters``) like a password field.
SAML_RESPONSE_FIELD = "SAMLResponse"
TICKET_FIELD = "ticket"
#: Where a logout lands when ``settings.LOGOUT_REDIRECT_URL`` names no page: :func:`signed_out`.
SIGNED_OUT_URL_NAME = "maestrano_accounts:signed-out"


def logout_landing_url() -> str:
    """Where a logout that stays in this application sends the browser.

    Django's ``LOGOUT_REDIRECT_URL`` (a path, a URL or a URL name, read as Django's own
    ``LogoutView`` reads it), else the signed-out page of this app, which every project
    that includes ``maestrano_integration.urls`` serves. A logout through SSO goes on at
    the platform instead, which chooses where the browser goes next (docs/protocol.md,
    "Logout": the logout URL carries no return address).
    """
    return resolve_url(settings.LOGOUT_REDIRECT_URL or SIGNED_OUT_URL_NAME)


def _preset_or_404(name: str | None) -> Preset:
    try:
        preset = get_preset(name)
    except ImproperlyConfiguredPreset:
        raise Http404("Unknown Maestrano preset") from None
    if not preset.sso_enabled:
        raise Http404("Single sign-on is disabled for this marketplace")
    return preset


def _refuse(
    request: HttpRequest, *, preset: Preset | None, error: SamlValidationError
) -> HttpResponse:
    """Log why a login was refused (never the SAML response) and show a short page."""
    logger.warning(
        "SSO login refused: %s (%s)",
        error.reason,
        error.detail,
        extra={
            "preset": preset.name if preset else "",
            "reason": error.reason,
            "remote_addr": request_address(request),
        },
    )
    metrics.record_sso_refusal(preset=preset.name if preset else "", reason=error.reason)
    context = {"preset": preset, "reason": error.reason}
    return render_page(request, "maestrano_accounts/sso_error.html", context, status=error.status)


def _refuse_unreadable_form(request: HttpRequest) -> None:
    """A POSTed form that is not text (bytes that are not UTF-8, which Django would read
    as U+FFFD) is refused as it is, before anything reads a field
    (:func:`maestrano_integration.request_text.form_problem`)."""
    problem = form_problem(request)
    if problem is not None:
        raise SamlValidationError("unreadable_form", problem)


def _misconfigured(
    request: HttpRequest, *, preset: Preset | None, error: Exception
) -> HttpResponse:
    return sso_misconfigured_page(request, preset=preset, error=error, logger=logger)


@require_GET
@never_cache
@maestrano_session_exempt
def sso_init(request: HttpRequest, preset: str | None = None) -> HttpResponse:
    """Start an SP-initiated login: AuthnRequest to the IdP, GET params (group_id) forwarded."""
    try:
        resolved = _preset_or_404(preset)
    except InvalidSettingType as error:
        return _misconfigured(request, preset=None, error=error)
    params = request.GET.dict()
    # A deep link (``?next=/people/108/``) waits in the session for the completion view.
    next_url = params.pop("next", "")
    try:
        redirect = build_authn_request(resolved, forward_params=params)
    except (SamlConfigurationError, InvalidSettingType) as error:
        return _misconfigured(request, preset=resolved, error=error)
    try:
        response = HttpResponseRedirect(redirect.url)
    except DisallowedRedirect:  # the forwarded parameters make a URL too long to redirect to
        too_long = SamlValidationError("request_too_long", f"{len(redirect.url)} characters")
        return _refuse(request, preset=resolved, error=too_long)
    next_url = local_url(request, next_url)
    sso_state.remember_request(
        request, request_id=redirect.request_id, preset=resolved, next_url=next_url
    )
    logger.info(
        "SSO login started",
        extra={"preset": resolved.name, "authn_request_id": redirect.request_id},
    )
    return response


@csrf_exempt
@require_POST
@never_cache
@maestrano_session_exempt
@sensitive_post_parameters(SAML_RESPONSE_FIELD)
def sso_consume(request: HttpRequest, preset: str | None = None) -> HttpResponse:
    """The ACS (HTTP-POST binding): validate, then hand over to :func:`sso_complete`.

    See the module docstring for why the login itself happens on the GET.
    """
    try:
        resolved = _preset_or_404(preset)
    except InvalidSettingType as error:
        return _misconfigured(request, preset=None, error=error)
    try:
        _refuse_unreadable_form(request)
        assertion = validate_response(
            resolved, saml_response=request.POST.get(SAML_RESPONSE_FIELD), request=request
        )
        ticket = sso_state.accept_assertion(preset=resolved, assertion=assertion)
    except SamlValidationError as error:
        return _refuse(request, preset=resolved, error=error)
    except (SamlConfigurationError, InvalidSettingType) as error:
        # InvalidSettingType: a MAESTRANO value of a wrong type (maestrano.E039), such as
        # sso.allow_sha1 = "false": refused, never read as the value it might mean.
        return _misconfigured(request, preset=resolved, error=error)
    complete_path = kept_resolve_url("maestrano_accounts:sso-complete")
    response = HttpResponseRedirect(
        complete_path + "?" + urlencode({TICKET_FIELD: ticket.token}), status=303
    )
    sso_state.set_nonce_cookie(
        response, request=request, nonce=ticket.browser_nonce, complete_path=complete_path
    )
    return response


@require_http_methods(["GET", "POST"])
@never_cache
@maestrano_session_exempt
@sensitive_post_parameters(TICKET_FIELD)
def sso_complete(request: HttpRequest) -> HttpResponse:
    """Finish a login validated by :func:`sso_consume`, in the browser's own session.

    A GET (the consume view's redirect) that would replace another user's login with
    an IdP-initiated one shows a confirmation page instead (:func:`_confirm`); its form
    POSTs here, with the CSRF token, a new ticket and the login goes on.
    """
    preset: Preset | None = None
    data = request.POST if request.method == "POST" else request.GET
    try:
        _refuse_unreadable_form(request)
        ticket = sso_state.redeem_login_ticket(
            token=data.get(TICKET_FIELD, ""),
            browser_nonce=sso_state.nonce_cookie(request),
            session=request.session,
        )
        preset = _ticket_preset(ticket)
        if request.method == "GET" and sso_state.needs_confirmation(
            request, preset=preset, ticket=ticket
        ):
            return _confirm(request, preset=preset, ticket=ticket)
        answered = sso_state.answered_request(
            request, preset=preset, in_response_to=ticket.in_response_to
        )
        result = _authenticate(request, preset=preset, ticket=ticket)
        if result is not None:
            _log_in(request, preset=preset, attributes=ticket.attributes, result=result)
    except SamlValidationError as error:
        return sso_state.forget_nonce(_refuse(request, preset=preset, error=error), request=request)
    except InvalidSettingType as error:  # maestrano.E039
        return sso_state.forget_nonce(
            _misconfigured(request, preset=preset, error=error), request=request
        )
    if result is None:
        # An adapter refused the user (inactive), or the backend is not installed
        # (a system check reports that): the platform shows its own page.
        return HttpResponseRedirect(preset.unauthorized_url)
    redirect_to = (answered or {}).get("next") or get_adapter().login_redirect_url(
        request, preset=preset, company=result.company
    )
    return sso_state.forget_nonce(HttpResponseRedirect(redirect_to), request=request)


def _confirm(
    request: HttpRequest, *, preset: Preset, ticket: sso_state.RedeemedTicket
) -> HttpResponse:
    """Ask before an IdP-initiated login replaces the browser's current login."""
    issued = sso_state.reissue_for_confirmation(ticket=ticket)
    attributes = ticket.attributes
    logger.info(
        "SSO login waits for confirmation: it would replace another login",
        extra={"preset": preset.name, "uid": attributes.uid, "group": attributes.group_uid},
    )
    response = render_page(
        request,
        "maestrano_accounts/sso_confirm.html",
        {
            "ticket": issued.token,
            "incoming": attributes.user_email(preset.creation_mode)
            or " ".join(filter(None, (attributes.first_name, attributes.last_name)))
            or attributes.uid,
            "group_name": attributes.group_name or attributes.group_uid,
        },
    )
    sso_state.set_nonce_cookie(
        response, request=request, nonce=issued.browser_nonce, complete_path=request.path
    )
    return response


def _ticket_preset(ticket: sso_state.RedeemedTicket) -> Preset:
    try:
        return get_preset(ticket.preset_name)
    except ImproperlyConfiguredPreset:
        raise SamlValidationError("unknown_preset", ticket.preset_name) from None


def _authenticate(
    request: HttpRequest, *, preset: Preset, ticket: sso_state.RedeemedTicket
) -> services.SsoLogin | None:
    """The login the backend provisioned, or ``None`` when no user may log in."""
    try:
        user = authenticate_sso(
            request,
            preset=preset,
            attributes=ticket.attributes,
            validated_at=ticket.counts_from,
        )
    except services.AccountConflict as error:
        raise SamlValidationError("account_conflict", str(error), status=409) from None
    except services.RemovedDuringLogin as error:
        raise SamlValidationError("removed_during_login", str(error), status=403) from None
    return getattr(user, SSO_LOGIN_ATTRIBUTE, None) if user is not None else None


def _log_in(
    request: HttpRequest, *, preset: Preset, attributes: SsoAttributes, result: services.SsoLogin
) -> None:
    if result.login_times is None:
        login(request, result.user)  # type: ignore[arg-type]  # any AUTH_USER_MODEL
    else:
        # A repeat login: its login times written once login() is done, in one statement.
        with sso_state.holding_login_writes(result.login_times):
            login(request, result.user)  # type: ignore[arg-type]
    store_platform_session(
        request, preset=preset, attributes=attributes, company_id=result.company.pk
    )
    logger.info(
        "SSO login",
        extra={
            "preset": preset.name,
            "group": result.company.group_uid,
            "uid": attributes.user_uid(preset.creation_mode),
            "company_created": result.company_created,
            "user_created": result.user_created,
            "user_migrated": result.user_migrated,
        },
    )
    metrics.record_sso_login(preset=preset.name)


@require_http_methods(["GET", "POST"])
@never_cache
@maestrano_session_exempt
def sso_logout(request: HttpRequest, preset: str | None = None) -> HttpResponse:
    """Log out here, then at the platform (``{api.host}/app_logout?user_uid=...``).

    Only a POST with the CSRF token logs out, so that no other site can end the
    session with a link or an image; a GET shows a page with that form. "You are
    signed out" waits in Django's messages (when the project uses them) for the
    next page of the site: the home page, where the sandbox's logout sends the
    browser back. A session that did not come from this preset's SSO (no platform
    uid) is only logged out here, and lands on :func:`logout_landing_url`. The
    platform's own session end (single logout) goes through
    :class:`maestrano_accounts.middleware.MaestranoSessionMiddleware`, not through here.

    The plain ``/maestrano/logout`` (``preset`` not in the URL: the form docs/install.md
    gives, the app's own pages) ends the session of the marketplace it logged in through,
    the default one or another; ``/maestrano/<preset>/logout`` names the marketplace.
    """
    try:
        resolved = get_preset(preset if preset is not None else _session_preset(request))
    except ImproperlyConfiguredPreset:
        raise Http404("Unknown Maestrano preset") from None
    except InvalidSettingType as error:  # an unusable preset (maestrano.E039)
        return _misconfigured(request, preset=None, error=error)
    if request.method != "POST":
        context = {"preset": resolved, "landing_url": logout_landing_url()}
        return render_page(request, "maestrano_accounts/logout_confirm.html", context)
    data = platform_session(request) or {}
    uid = data.get("uid") if data.get("preset") == resolved.name else None
    logout(request)
    # Shown by the next page of this site: the home page the platform sends the browser
    # back to (the sandbox does), or the next visit.
    messages.success(request, SIGNED_OUT_MESSAGE, fail_silently=True)
    if not uid:
        return HttpResponseRedirect(logout_landing_url())
    return HttpResponseRedirect(resolved.logout_url(uid))


def _session_preset(request: HttpRequest) -> str | None:
    """The preset the session logged in through while it is still configured, else
    ``None`` (the default preset): a login without SSO, or a preset removed since."""
    name = platform_session_preset(request)
    if not name:
        return None
    try:
        return get_preset(name).name
    except ImproperlyConfiguredPreset:
        return None


@require_GET
@never_cache  # it names the user who is logged in, if any
def signed_out(request: HttpRequest) -> HttpResponse:
    """The "You are signed out" page, with a way back in: where a logout lands by default.

    Template ``maestrano_accounts/signed_out.html`` (override it in your project). The page
    says it itself, so :data:`SIGNED_OUT_MESSAGE` is taken out of the messages it shows;
    any other message is shown as usual.
    """
    others = [m for m in messages.get_messages(request) if m.message != SIGNED_OUT_MESSAGE]
    context = {"messages": others, "login_url": _login_url()}
    return render_page(request, "maestrano_accounts/signed_out.html", context)


def _login_url() -> str:
    """The default preset's SSO init path (behind the script prefix), or ``""`` when it
    offers no login."""
    try:
        preset = get_preset()
        return served_path(preset.init_path) if preset.sso_enabled else ""
    except (ImproperlyConfiguredPreset, InvalidSettingType):  # none, or unusable (E039)
        return ""


@require_POST
@login_required
def switch_company(request: HttpRequest) -> HttpResponse:
    """Make another of the session's companies the current one (CSRF-protected form).

    Another user's company, a cancelled one, one of another marketplace than the SSO
    login's, or an id that is none: 404 alike.
    """
    try:
        company_id = int(request.POST.get("company_id", ""))
        company = services.switch_company(
            user=cast(AbstractBaseUser, request.user),  # login_required
            company_id=company_id,
            preset=platform_session_preset(request),
        )
    except (ValueError, Company.DoesNotExist):
        raise Http404("No such company") from None
    make_current_company(request, company)
    next_url = local_url(
        request, request.POST.get("next", ""), fallback=reverse("maestrano_accounts:dashboard")
    )
    return HttpResponseRedirect(next_url)


@require_GET
@login_required
@never_cache  # its forms carry one-time keys (the example's buy form): Back reloads it
def dashboard(request: HttpRequest) -> HttpResponse:
    """Post-login landing page: the current company and the switcher."""
    company = current_company(request)
    role = current_role(request)
    context = {
        "company": company,
        "companies": list(session_companies(request)),
        "platform_session": platform_session(request),
        "role": role,
        "role_label": Membership.Role(role).label if role in Membership.Role.values else role,
        # The billing pages are the project's to include (docs/billing.md), for Admins.
        "billing_url": _optional_url("maestrano_billing:overview")
        if role_at_least(role, Membership.Role.ADMIN)
        else None,
    }
    return render_page(request, "maestrano_accounts/dashboard.html", context)


def _optional_url(name: str) -> str | None:
    """The path of ``name``, or ``None`` when the project does not include that page."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return None
