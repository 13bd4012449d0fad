"""Per-request enforcement: platform session check (SLO), company access, forms of a company.

Add ``maestrano_accounts.middleware.MaestranoSessionMiddleware`` after
``AuthenticationMiddleware``. For requests of a user logged in through SSO it

1. when the current company is cancelled or the user's membership in it is
   inactive (the account webhooks' decisions take effect on the next request),
   makes another of the session's companies current (the first of
   :func:`~maestrano_accounts.selectors.session_companies`, the companies the
   switcher offers: only those of the preset the user logged in through), with a
   message saying so; a user with no such company left (or deactivated) is logged
   out and sent to the platform's "access unauthorized" page;
2. once ``session_recheck`` has passed and SLO is enabled for the preset, asks
   the platform whether the session is still valid: valid → next recheck
   stored; invalid → logged out and sent to the preset's init URL;
   unreachable → kept until the next recheck window, with a warning.

For every logged-in user (with or without SSO) it then

3. refuses a form posted for another company than the current one (a form
   rendered with ``{% company_form_field %}`` before a switch in another tab;
   :mod:`maestrano_accounts.company_forms`): nothing is run, and the user is sent to
   the landing page with a message naming both companies.

Views that must run without these checks (the SSO views themselves) are
decorated with :func:`maestrano_session_exempt`; views exempt from CSRF
protection (APIs, webhooks) are not subject to the third check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext_lazy as _

from maestrano_integration.conf import (
    ImproperlyConfiguredPreset,
    Preset,
    get_preset,
)
from maestrano_integration.setting_types import InvalidSettingType

from .adapter import default_login_redirect_url, get_adapter
from .company_forms import form_for_another_company
from .models import Company
from .pages import sso_misconfigured_page
from .selectors import current_company, make_current_company, session_companies
from .sessions import (
    CURRENT_COMPANY_KEY,
    SessionStatus,
    check_platform_session,
    platform_session,
    recheck_due,
    set_recheck,
)

logger = logging.getLogger(__name__)

COMPANY_GONE_MESSAGE = _("%(gone)s is no longer available; you are now in %(company)s.")
#: Added when the request that found the company gone would have changed something.
NOT_CARRIED_OUT_MESSAGE = _("What you just sent was not carried out.")
#: Requests that only read: after a switch they go on, in the other company.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def maestrano_session_exempt(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Mark a view as not subject to :class:`MaestranoSessionMiddleware`."""
    view.maestrano_session_exempt = True  # type: ignore[attr-defined]
    return view


class MaestranoSessionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: Any,
        view_kwargs: Any,
    ) -> HttpResponse | None:
        if getattr(view_func, "maestrano_session_exempt", False):
            return None

        if not hasattr(request, "session"):
            return None
        data = platform_session(request)
        preset: Preset | None = None
        if data is not None:
            try:
                preset = get_preset(str(data.get("preset")))
            except ImproperlyConfiguredPreset:
                # The marketplace was removed from settings: its sessions end.
                logout(request)
                return HttpResponseRedirect("/")
            except InvalidSettingType as error:  # an unusable preset (maestrano.E039)
                return sso_misconfigured_page(request, logger=logger, preset=None, error=error)
            denied = self._deny_lost_access(request, preset=preset, data=data)
            if denied is not None:
                return denied
            try:
                ended = self._check_platform_session(request, preset=preset, data=data)
            except InvalidSettingType as error:
                # maestrano.E039 (sso.enabled or sso.slo_enabled of a wrong type): the
                # platform session cannot be checked as configured, so no page is served.
                return sso_misconfigured_page(request, logger=logger, preset=preset, error=error)
            if ended is not None:
                return ended
        if getattr(view_func, "csrf_exempt", False):
            return None  # an API or a webhook: not a form rendered in a company
        return self._refuse_form_of_another_company(request, preset=preset)

    def _deny_lost_access(
        self, request: HttpRequest, *, preset: Preset, data: dict[str, Any]
    ) -> HttpResponse | None:
        user = request.user
        if user.is_authenticated and current_company(request) is not None:
            return None
        if user.is_authenticated:
            # Cancelled company or removed membership: another company, if any is left.
            # Only a company of the marketplace the user logged in through: the platform
            # session checked here is that preset's.
            other = session_companies(request).first()
            if other is not None:
                logger.info(
                    "SSO user lost access to the current company; switched to another",
                    extra={"preset": preset.name, "uid": data.get("uid", ""), "company": other.pk},
                )
                gone = _company_name(request.session.get(CURRENT_COMPANY_KEY))
                make_current_company(request, other)
                message = COMPANY_GONE_MESSAGE % {"gone": gone, "company": other.name}
                if request.method in SAFE_METHODS:
                    messages.info(request, message, fail_silently=True)
                    return None
                # A form sent for the company that is gone must not act on the other one
                # (its CSRF token and the role check would pass there): not run, and said so.
                messages.warning(
                    request, f"{message} {NOT_CARRIED_OUT_MESSAGE}", fail_silently=True
                )
                return HttpResponseRedirect(_landing_url(request, preset=preset, company=other))
        # Deactivated user (AuthenticationMiddleware made them anonymous),
        # or no company left to work in.
        logger.info(
            "SSO user lost access; logging out",
            extra={
                "preset": preset.name,
                "group": data.get("group_uid", ""),
                "uid": data.get("uid", ""),
            },
        )
        logout(request)
        return HttpResponseRedirect(preset.unauthorized_url)

    def _check_platform_session(
        self, request: HttpRequest, *, preset: Preset, data: dict[str, Any]
    ) -> HttpResponse | None:
        if not (preset.sso_enabled and preset.slo_enabled) or not recheck_due(data):
            return None
        result = check_platform_session(
            preset=preset, uid=str(data.get("uid", "")), session_token=str(data.get("session", ""))
        )
        if result.status is SessionStatus.INVALID:
            logout(request)
            return HttpResponseRedirect(preset.init_url)
        set_recheck(request, result.recheck)
        return None

    def _refuse_form_of_another_company(
        self, request: HttpRequest, *, preset: Preset | None
    ) -> HttpResponse | None:
        """A form rendered for company A, posted once B is current (a switch in another
        tab): not run, and said so. Its CSRF token and the user's role would pass in B."""
        user = getattr(request, "user", None)
        if request.method in SAFE_METHODS or user is None or not user.is_authenticated:
            return None
        company = current_company(request)
        if company is None:
            return None  # no company to act in: the view refuses it
        refused = form_for_another_company(request, current=company)
        if refused is None:
            return None
        logger.info(
            "Form posted for another company than the current one; not run",
            extra={
                "preset": preset.name if preset else "",
                "company": company.pk,
                "path": request.path,
            },
        )
        messages.warning(request, refused.message, fail_silently=True)
        return HttpResponseRedirect(_landing_url(request, preset=preset, company=company))


def _landing_url(request: HttpRequest, *, preset: Preset | None, company: Company) -> str:
    """Where a refused form sends the user: the adapter's landing page after SSO (the
    setting ``SSO_LOGIN_REDIRECT_URL`` for a login without SSO)."""
    if preset is None:
        return default_login_redirect_url()
    return get_adapter().login_redirect_url(request, preset=preset, company=company)


def _company_name(company_id: Any) -> str:
    """The name of the company the session was working in (whatever became of it)."""
    name = (
        Company.objects.filter(pk=company_id).values_list("name", flat=True).first()
        if isinstance(company_id, int)
        else None
    )
    return name or "The company you were working in"
