"""Forms rendered for one company, and the check that refuses them once another is current.

A page rendered in company A (buy SMS, a new person...) stays open in its tab while the
user switches to company B in another one: its CSRF token and the user's role are good in
B too, so without a check the form would act in B. A form opts in with
``{% load maestrano %}{% company_form_field %}``, a hidden input that names the company it
was rendered for (:data:`COMPANY_FORM_FIELD`);
:class:`~maestrano_accounts.middleware.MaestranoSessionMiddleware` refuses a form whose
company is not the current one (:func:`form_for_another_company`). Requests without the
field (APIs, JSON, forms of other apps) are not concerned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.http import HttpRequest, UnreadablePostError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import Company
from .selectors import session_companies

#: The hidden input's name: prefixed so that no form field of a project meets it.
COMPANY_FORM_FIELD = "maestrano_form_company"

#: What a company id looks like: ASCII digits, at most what a 64-bit key holds (``int()``
#: would also take other scripts' digits, signs, underscores and spaces).
_COMPANY_ID = re.compile(r"[0-9]{1,18}")

#: What names the company the form was for when the session may no longer work in it (or
#: never could): never another tenant's name, whatever id is posted.
_UNNAMED = _("another company")


@dataclass(frozen=True)
class FormForAnotherCompany:
    """A form posted for ``form_company`` while ``current`` is the current company."""

    form_company: str
    current: Company

    @property
    def message(self) -> str:
        return gettext(
            "This form was for %(form_company)s; you are now in %(company)s. Nothing was changed."
        ) % {"form_company": self.form_company, "company": self.current.name}


def posted_form_company(request: HttpRequest) -> str | None:
    """The value of :data:`COMPANY_FORM_FIELD` a POST carries, or ``None`` without it.

    Only form bodies are read (``application/x-www-form-urlencoded`` and
    ``multipart/form-data``, as Django parses them for ``request.POST``); a body that
    cannot be read is treated as not carrying the field: the view answers it as before.
    """
    if request.method != "POST":
        return None
    try:
        value = request.POST.get(COMPANY_FORM_FIELD)
    except UnreadablePostError:
        return None
    return value if isinstance(value, str) else None


def form_for_another_company(
    request: HttpRequest, *, current: Company
) -> FormForAnotherCompany | None:
    """Whether ``request`` posts a form rendered for another company than ``current``.

    ``None`` when the form carries no :data:`COMPANY_FORM_FIELD` or names ``current``.
    Any other value (another company's id, a value that is no id, an empty one) is
    refused: only a form rendered in ``current`` can name it.
    """
    value = posted_form_company(request)
    if value is None:
        return None
    company_id = int(value) if _COMPANY_ID.fullmatch(value) else None
    if company_id == current.pk:
        return None
    name = None
    if company_id is not None:
        # Named only when the session may still work in it: never another tenant's name,
        # nor one the user was removed from (under a name it may have taken since).
        name = (
            session_companies(request).filter(pk=company_id).values_list("name", flat=True).first()
        )
    return FormForAnotherCompany(form_company=name or str(_UNNAMED), current=current)
