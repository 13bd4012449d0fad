"""Read-side queries of accounts, above all the one place that decides the current tenant.

Every page and API that shows company data scopes its queries with
:func:`current_company`; nothing else reads ``current_company_id`` from the
session. :func:`make_current_company` changes it (the company switcher, and the
session middleware when the current company is no longer available).
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Company, Membership
from .sessions import CURRENT_COMPANY_KEY, platform_session_preset

_CACHE_ATTRIBUTE = "_maestrano_current_company"


def accessible_companies(*, user: AbstractBaseUser, preset: str | None = None) -> QuerySet[Company]:
    """Companies ``user`` may work in: active memberships of active companies.

    Only those of ``preset`` (a preset's name) when it is given; every preset's when
    it is ``None``.
    """
    companies = Company.objects.filter(
        status=Company.Status.ACTIVE,
        memberships__user=user,  # type: ignore[misc]  # any AUTH_USER_MODEL (the plugin knows the example's)
        memberships__is_active=True,
    )
    if preset is not None:
        companies = companies.filter(preset=preset)
    return companies.order_by("name", "pk")


def session_companies(request: HttpRequest) -> QuerySet[Company]:
    """The companies the request's session may work in (the switcher's list).

    A session logged in through SSO works only in companies of the preset it logged in
    through (:func:`~maestrano_accounts.sessions.platform_session_preset`): the platform
    session the middleware checks is that marketplace's, and says nothing of another's.
    A login without SSO (a Django user through the admin, say) is tied to no marketplace:
    all of the user's companies.
    """
    user = request.user
    if not isinstance(user, AbstractBaseUser):  # anonymous: no company
        return Company.objects.none()
    return accessible_companies(user=user, preset=platform_session_preset(request))


def current_company(request: HttpRequest) -> Company | None:
    """The company the request works in, or ``None``.

    ``None`` when the user is anonymous, no company was chosen, the company is
    cancelled, the user's membership is no longer active (access follows the
    platform's webhooks at once, not at the next login), or the company is not one of
    :func:`session_companies` (another marketplace's than the SSO login's).
    """
    if hasattr(request, _CACHE_ATTRIBUTE):
        return getattr(request, _CACHE_ATTRIBUTE)
    company: Company | None = None
    user = getattr(request, "user", None)
    company_id = request.session.get(CURRENT_COMPANY_KEY) if hasattr(request, "session") else None
    if user is not None and user.is_authenticated and isinstance(company_id, int):
        company = session_companies(request).filter(pk=company_id).first()
    setattr(request, _CACHE_ATTRIBUTE, company)
    return company


def make_current_company(request: HttpRequest, company: Company) -> None:
    """Make ``company`` the current company of the session, from this request on.

    The caller has checked that the session may work in it (an element of
    :func:`session_companies`, or :func:`maestrano_accounts.services.switch_company`).
    """
    request.session[CURRENT_COMPANY_KEY] = company.pk
    setattr(request, _CACHE_ATTRIBUTE, company)


def membership_in(*, user: AbstractBaseUser, company: Company) -> Membership | None:
    return Membership.objects.filter(user=user, company=company).first()  # type: ignore[misc]  # any AUTH_USER_MODEL (the plugin knows the example's)
