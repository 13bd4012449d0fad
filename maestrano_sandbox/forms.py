"""Forms of the sandbox pages: IdP login, app registration, directory edits."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from .keys import SIGNATURE_ALGORITHMS
from .models import Group, GroupMembership, PlatformUser, RegisteredApp
from .registration import api_id_problem

USER_UID = RegexValidator(r"^usr-[A-Za-z0-9_-]+$", "A user uid looks like usr-1 or usr-abc123.")
GROUP_UID = RegexValidator(r"^cld-[A-Za-z0-9_-]+$", "A group uid looks like cld-1 or cld-abc123.")
CURRENCY = RegexValidator(r"^[A-Za-z]{3}$", "An ISO 4217 currency code: 3 capital letters (AUD).")
COUNTRY = RegexValidator(r"^[A-Za-z]{2}$", "An ISO 3166-1 alpha-2 code: 2 capital letters (AU).")
# Users' and groups' details go into SAML assertions: XML 1.0 holds no C0 control character
# but tab, line feed and carriage return (lxml refuses the others, a 500 at every sign-in).
XML_TEXT = RegexValidator(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]",
    "Text without control characters (a SAML assertion cannot hold them).",
    inverse_match=True,
)


def _xml_text_only(form: forms.Form) -> None:
    """Every text field of ``form`` refuses what a SAML assertion cannot hold."""
    for field in form.fields.values():
        if isinstance(field, forms.CharField):
            field.validators.append(XML_TEXT)


def _column_length(model: Any, field: str) -> int:
    """The length of ``model.field``'s column: a form field longer than it would pass its
    checks and then fail the write (PostgreSQL enforces it, a 500 instead of the form's error).
    """
    return model._meta.get_field(field).max_length


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("An Olson timezone name, e.g. Australia/Sydney.") from None


ROLE_CHOICES = [(role, role) for role in GroupMembership.ROLES]
TRI_STATE = [("", "keep / default"), ("true", "yes"), ("false", "no")]


def _upper(value: str | None) -> str | None:
    return value.upper() if value else value


class SsoLoginForm(forms.Form):
    """The IdP login page: who logs in, through which group, with which role.

    A ``user_uid``/``group_uid`` that exists picks that user/group (non-blank
    fields update it); an unknown or blank one creates it, blank fields taking
    defaults (see :func:`maestrano_sandbox.directory.upsert_user` and ``upsert_group``).
    """

    SAMLRequest = forms.CharField(widget=forms.HiddenInput)
    RelayState = forms.CharField(widget=forms.HiddenInput, required=False)

    user_uid = forms.CharField(
        label="User uid",
        required=False,
        max_length=_column_length(PlatformUser, "uid"),
        validators=[USER_UID],
        help_text="Blank: a new user",
    )
    user_name = forms.CharField(label="First name", required=False, max_length=100)
    user_surname = forms.CharField(label="Surname", required=False, max_length=100)
    user_email = forms.EmailField(
        label="Email", required=False, max_length=_column_length(PlatformUser, "email")
    )
    user_country = forms.CharField(label="Country", required=False, validators=[COUNTRY])
    user_company_name = forms.CharField(label="Company name", required=False, max_length=200)

    group_uid = forms.CharField(
        label="Group uid",
        required=False,
        max_length=_column_length(Group, "uid"),
        validators=[GROUP_UID],
        help_text="Blank: a new group",
    )
    group_name = forms.CharField(label="Group name", required=False, max_length=200)
    group_email = forms.EmailField(
        label="Group email", required=False, max_length=_column_length(Group, "email")
    )
    group_currency = forms.CharField(label="Currency", required=False, validators=[CURRENCY])
    group_country = forms.CharField(label="Country", required=False, validators=[COUNTRY])
    group_city = forms.CharField(label="City", required=False, max_length=100)
    group_timezone = forms.CharField(
        label="Timezone (Olson)", required=False, max_length=64, validators=[validate_timezone]
    )
    group_free_trial_end = forms.DateTimeField(
        label="Free trial ends", required=False, help_text="e.g. 2030-01-31 or 2030-01-31T12:00Z"
    )
    group_has_credit_card = forms.ChoiceField(
        label="Has credit card", choices=TRI_STATE, required=False
    )
    role = forms.ChoiceField(
        label="Role in the group",
        choices=[("", "Keep the member's role (a new member: Member)"), *ROLE_CHOICES],
        required=False,
    )
    create_missing = forms.BooleanField(
        label="Create the user or group if the uid I typed does not exist",
        required=False,
        help_text="Off: a mistyped uid is reported instead of creating someone new.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("user_country", "group_country", "group_currency"):
            self.fields[name].widget.attrs["maxlength"] = 3 if "currency" in name else 2
        self.fields["user_uid"].widget.attrs["list"] = "user-uids"
        self.fields["group_uid"].widget.attrs["list"] = "group-uids"
        _xml_text_only(self)

    def clean(self) -> dict[str, Any]:
        """A typed uid that does not exist is created only when asked (a typo is not a user)."""
        super().clean()
        data = self.cleaned_data
        if data.get("create_missing"):
            return data
        user_uid, group_uid = data.get("user_uid"), data.get("group_uid")
        if user_uid and not PlatformUser.objects.filter(uid=user_uid).exists():
            self.add_error(
                "user_uid",
                f"There is no user {user_uid}. Check the uid, or tick “Create the user or "
                "group” below to create it.",
            )
        if group_uid and not Group.objects.filter(uid=group_uid).exists():
            self.add_error(
                "group_uid",
                f"There is no group {group_uid}. Check the uid, or tick “Create the user or "
                "group” below to create it.",
            )
        return data

    def clean_user_country(self) -> str | None:
        return _upper(self.cleaned_data.get("user_country"))

    def clean_group_country(self) -> str | None:
        return _upper(self.cleaned_data.get("group_country"))

    def clean_group_currency(self) -> str | None:
        return _upper(self.cleaned_data.get("group_currency"))

    @staticmethod
    def blank_to_none(value: Any) -> Any:
        return None if value in ("", None) else value

    def user_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "uid": data.get("user_uid") or None,
            "name": self.blank_to_none(data.get("user_name")),
            "surname": self.blank_to_none(data.get("user_surname")),
            "email": self.blank_to_none(data.get("user_email")),
            "country": self.blank_to_none(data.get("user_country")),
            "company_name": self.blank_to_none(data.get("user_company_name")),
        }

    def group_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        card = data.get("group_has_credit_card")
        return {
            "uid": data.get("group_uid") or None,
            "name": self.blank_to_none(data.get("group_name")),
            "email": self.blank_to_none(data.get("group_email")),
            "currency": self.blank_to_none(data.get("group_currency")),
            "country": self.blank_to_none(data.get("group_country")),
            "city": self.blank_to_none(data.get("group_city")),
            "timezone": self.blank_to_none(data.get("group_timezone")),
            "free_trial_end_at": data.get("group_free_trial_end"),
            "has_credit_card": None if not card else card == "true",
        }


class RegisteredAppForm(forms.ModelForm):
    """Manual registration of an app (the metadata fetch fills the same fields)."""

    app_host = forms.URLField(assume_scheme="http", help_text="e.g. http://127.0.0.1:8000")
    signature_algorithm = forms.ChoiceField(
        choices=[(a, a) for a in SIGNATURE_ALGORITHMS], initial="sha256"
    )

    class Meta:
        model = RegisteredApp
        fields = [
            "api_id",
            "api_key",
            "name",
            "app_host",
            "init_path",
            "consume_path",
            "groups_path",
            "group_users_path",
            "notifications_path",
            "metadata_path",
            "signature_algorithm",
        ]
        widgets = {"api_key": forms.TextInput(attrs={"autocomplete": "off"})}

    def clean_api_id(self) -> str:
        api_id = self.cleaned_data["api_id"]
        problem = api_id_problem(api_id)
        if problem:
            raise forms.ValidationError(problem)
        return api_id

    def clean_app_host(self) -> str:
        return self.cleaned_data["app_host"].rstrip("/")


class MembershipForm(forms.Form):
    """Add a user (existing or new) to a group from the group page."""

    user_uid = forms.CharField(
        label="User uid",
        required=False,
        max_length=_column_length(PlatformUser, "uid"),
        validators=[USER_UID],
        help_text="An existing user, or blank for a new one",
    )
    name = forms.CharField(label="First name", required=False, max_length=100)
    surname = forms.CharField(label="Surname", required=False, max_length=100)
    email = forms.EmailField(
        label="Email", required=False, max_length=_column_length(PlatformUser, "email")
    )
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, initial="Member")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _xml_text_only(self)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        uid = data.get("user_uid")
        if not (uid and PlatformUser.objects.filter(uid=uid).exists()):
            for field in ("name", "email"):
                if not data.get(field):
                    self.add_error(field, "Needed for a new user.")
        return data
