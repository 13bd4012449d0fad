"""Client of the platform's Account API (docs/protocol.md,
'Account API'): bills, recurring bills, users, groups.

One :class:`AccountClient` per preset. Results are typed dataclasses; errors are
:class:`AccountApiError` subclasses carrying the HTTP status and the envelope's
``errors`` so callers can show the platform's own messages.

Reads and cancels (GET, DELETE) are idempotent and retried by urllib3 on network
errors, 429 and 5xx. Creates (POST) are sent exactly once: a create that timed out
may have been applied, so :mod:`maestrano_accounts.billing.services` makes them safe to
repeat (a local record with a unique key, looked up on the platform before any
re-send) instead of the transport retrying them blindly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Self, TypeVar

import requests

from .conf import Preset, get_preset, maestrano_settings
from .http import (
    PlatformHTTPError,
    answer_reason,
    build_retry,
    build_session,
    flatten_errors,
    may_have_arrived,
    path_segment,
    sent_credentials,
)
from .times import NotATime, excerpt, platform_time, platform_time_text

logger = logging.getLogger(__name__)

#: Filter suffixes the Account API understands on list endpoints.
FILTER_SUFFIXES = (
    "_before",
    "_after",
    "_strictly_before",
    "_strictly_after",
    "_greater_than",
    "_lower_than",
)

#: A safety stop when following list pagination (MAX_PAGES x the page size objects).
MAX_PAGES = 1000

#: Methods the transport may repeat on its own (the platform applies them idempotently).
RETRIED_METHODS = frozenset({"GET", "DELETE"})

# How much of a non-JSON error body is kept on the exception (e.g. a proxy's HTML page).
_MAX_TEXT_BODY = 2000


# --- errors -------------------------------------------------------------------------


class AccountApiError(PlatformHTTPError):
    """The Account API refused a call, answered an error, or could not be reached.

    ``status`` is ``None`` for network errors and timeouts; ``errors`` is the
    envelope's ``{field: [messages]}`` (empty when the platform sent none), as answered:
    for code. The message (``str(error)``: logs, a billing row's ``last_error``) carries
    the platform's reason by the one rule of
    :func:`~maestrano_integration.http.answer_reason`: one line, at most 200 characters,
    our credentials hidden, nothing of an HTML page or an oversized body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: Mapping[str, Any] | None = None,
        body: Any = None,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message, status=status, errors=dict(errors or {}), body=body)
        self.method = method
        self.url = url

    @property
    def messages(self) -> list[str]:
        """The platform's messages, flattened as ``"field: message"``."""
        return flatten_errors(self.errors)


class AccountAuthenticationError(AccountApiError):
    """401: the preset's ``api.id``/``api.key`` were refused."""


class AccountValidationError(AccountApiError):
    """400/422: the platform refused the payload; ``errors`` says which field and why."""


class AccountNotFoundError(AccountApiError):
    """404: no such bill, recurring bill, user or group (for these credentials)."""


class AccountConnectionError(AccountApiError):
    """The platform could not be reached or did not answer in time (``status`` is ``None``).

    ``may_have_arrived`` is ``False`` only when the connection was never made
    (:func:`~maestrano_integration.http.may_have_arrived`). Otherwise, after a create
    (POST), the outcome is unknown: the platform may have applied it, or may still.
    """

    def __init__(self, message: str, *, may_have_arrived: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.may_have_arrived = may_have_arrived

    @property
    def outcome_unknown(self) -> bool:
        return self.may_have_arrived


# --- typed results ------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime by the platform's one rule (:mod:`maestrano_integration.times`);
    raises :class:`~maestrano_integration.times.NotATime` for a time it refuses
    (``2024-02-30``, an offset of 16 hours or more, no UTC time in years 1 to 9999)."""
    return platform_time(value)


def _parse_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _parse_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


#: How a field's annotation (a string, as ``from __future__ import annotations`` keeps
#: it) is read from the JSON: a parser returning ``None``/``""`` when absent or invalid.
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "str": _text,
    "int": _parse_int,
    "int | None": _parse_int,
    "bool": _parse_bool,
    "Decimal | None": _parse_decimal,
    "datetime | None": _parse_time,
}


class _ApiObject:
    """Base of the typed results: ``from_api`` fills every field from the JSON object.

    A value that is absent or unreadable takes the field's default (``0`` for an
    ``int`` without one), so a sparse platform answer never raises; the whole
    object is kept in ``raw``. A time that is not one (:mod:`maestrano_integration.times`)
    is unknown too, and logged as a warning naming the object and the field.
    """

    OBJECT: ClassVar[str] = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        values: dict[str, Any] = {}
        for spec in fields(cls):  # type: ignore[arg-type]
            if spec.name == "raw":
                continue
            try:
                value = _PARSERS[spec.type](data.get(spec.name))  # type: ignore[index]
            except NotATime as refused:
                logger.warning(
                    "Account API %s %s: %s is %s; read as unknown",
                    cls.OBJECT,
                    excerpt(data.get("id")),
                    spec.name,
                    refused,
                )
                value = None
            if value is None or value == "":
                if spec.default is not MISSING:
                    value = spec.default
                elif spec.type == "int":
                    value = 0
            values[spec.name] = value
        return cls(**values, raw=dict(data))  # type: ignore[call-arg]  # subclasses: dataclasses with raw


@dataclass(frozen=True)
class Bill(_ApiObject):
    """A one-off charge on a group (``object: account_bill``)."""

    OBJECT: ClassVar[str] = "account_bill"

    id: str
    group_id: str
    price_cents: int
    description: str
    status: str
    currency: str
    units: Decimal | None = None
    period_started_at: datetime | None = None
    period_ended_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RecurringBill(_ApiObject):
    """A charge repeated every ``frequency`` x ``period`` (``object: account_recurring_bill``)."""

    OBJECT: ClassVar[str] = "account_recurring_bill"

    id: str
    group_id: str
    price_cents: int
    description: str
    status: str
    currency: str
    period: str = "Month"
    frequency: int = 1
    cycles: int | None = None
    start_date: datetime | None = None
    initial_cents: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class AccountUser(_ApiObject):
    """A platform user having access to the app (``object: account_user``); read-only."""

    OBJECT: ClassVar[str] = "account_user"

    id: str
    name: str = ""
    surname: str = ""
    email: str = ""
    company_name: str = ""
    country: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class AccountGroup(_ApiObject):
    """A customer account, the billed entity (``object: account_group``); read-only."""

    OBJECT: ClassVar[str] = "account_group"

    id: str
    name: str = ""
    email: str = ""
    has_credit_card: bool = False
    free_trial_end_at: datetime | None = None
    currency: str = ""
    country: str = ""
    city: str = ""
    timezone: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


Resource = TypeVar("Resource", Bill, RecurringBill, AccountUser, AccountGroup)


# --- the client -----------------------------------------------------------------------


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return platform_time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _payload_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return platform_time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class AccountClient:
    """The Account API of one preset: ``AccountClient(preset="maestrano")``.

    ``preset`` is a :class:`Preset`, a preset name, or ``None`` for the default
    preset. Timeouts come from ``MAESTRANO["HTTP_TIMEOUT"]`` and transport retries
    of GET/DELETE from ``MAESTRANO["HTTP_RETRIES"]`` unless given here.
    """

    def __init__(
        self,
        *,
        preset: Preset | str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> None:
        self.preset = preset if isinstance(preset, Preset) else get_preset(preset)
        self.timeout = float(timeout if timeout is not None else maestrano_settings.HTTP_TIMEOUT)
        retries = int(retries if retries is not None else maestrano_settings.HTTP_RETRIES)
        auth = (self.preset.api_id, self.preset.api_key)
        # Two sessions so the transport can never repeat a create: reads and
        # cancels get urllib3's retries, creates get none at all (not even on a
        # connection error, to keep the rule simple to audit).
        self._retrying_session = build_session(
            auth=auth, retry=build_retry(total=retries, methods=RETRIED_METHODS), api="account"
        )
        self._single_shot_session = build_session(
            auth=auth, retry=build_retry(total=0), api="account"
        )

    def close(self) -> None:
        self._retrying_session.close()
        self._single_shot_session.close()

    def __enter__(self) -> AccountClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- bills ------------------------------------------------------------------------
    def list_bills(self, **filters: Any) -> list[Bill]:
        """Bills, filtered e.g. ``group_id="cld-1"``, ``created_at_after=datetime(...)``."""
        return self._list("bills", Bill, filters)

    def retrieve_bill(self, bill_id: str) -> Bill:
        return self._retrieve("bills", bill_id, Bill)

    def create_bill(
        self,
        *,
        group_id: str,
        price_cents: int,
        description: str,
        currency: str | None = None,
        units: Decimal | float | str | None = None,
        period_started_at: datetime | None = None,
        period_ended_at: datetime | None = None,
    ) -> Bill:
        """Send a one-off charge. Sent once, never retried (see the module docstring)."""
        payload = {
            "group_id": group_id,
            "price_cents": price_cents,
            "description": description,
            "currency": currency,
            "units": units,
            "period_started_at": period_started_at,
            "period_ended_at": period_ended_at,
        }
        return self._create("bills", payload, Bill)

    def cancel_bill(self, bill_id: str) -> Bill:
        return self._cancel("bills", bill_id, Bill)

    # --- recurring bills -------------------------------------------------------------
    def list_recurring_bills(self, **filters: Any) -> list[RecurringBill]:
        return self._list("recurring_bills", RecurringBill, filters)

    def retrieve_recurring_bill(self, recurring_bill_id: str) -> RecurringBill:
        return self._retrieve("recurring_bills", recurring_bill_id, RecurringBill)

    def create_recurring_bill(
        self,
        *,
        group_id: str,
        price_cents: int,
        description: str,
        period: str | None = None,
        frequency: int | None = None,
        cycles: int | None = None,
        start_date: datetime | None = None,
        currency: str | None = None,
        initial_cents: int | None = None,
    ) -> RecurringBill:
        """Start charging a group every period. Sent once, never retried."""
        payload = {
            "group_id": group_id,
            "price_cents": price_cents,
            "description": description,
            "period": period,
            "frequency": frequency,
            "cycles": cycles,
            "start_date": start_date,
            "currency": currency,
            "initial_cents": initial_cents,
        }
        return self._create("recurring_bills", payload, RecurringBill)

    def cancel_recurring_bill(self, recurring_bill_id: str) -> RecurringBill:
        return self._cancel("recurring_bills", recurring_bill_id, RecurringBill)

    # --- users and groups (read-only) ------------------------------------------------
    def list_users(self, **filters: Any) -> list[AccountUser]:
        return self._list("users", AccountUser, filters)

    def retrieve_user(self, user_id: str) -> AccountUser:
        return self._retrieve("users", user_id, AccountUser)

    def list_groups(self, **filters: Any) -> list[AccountGroup]:
        return self._list("groups", AccountGroup, filters)

    def retrieve_group(self, group_id: str) -> AccountGroup:
        return self._retrieve("groups", group_id, AccountGroup)

    # --- plumbing ----------------------------------------------------------------------
    def url(self, resource: str, object_id: str | None = None) -> str:
        url = f"{self.preset.account_api_url}{resource}"
        if object_id is not None:
            # One segment: ``../groups`` or ``bill?x`` names no other resource (ValueError
            # for an empty id, ``.`` or ``..``).
            url = f"{url}/{path_segment(object_id)}"
        return url

    def _list(
        self, resource: str, result: type[Resource], filters: Mapping[str, Any]
    ) -> list[Resource]:
        """Every matching object, following ``pagination`` unless ``limit``/``offset`` is given."""
        params = {name: _query_value(value) for name, value in filters.items() if value is not None}
        single_page = "limit" in params or "offset" in params
        url = self.url(resource)
        results: list[Resource] = []
        for _page in range(MAX_PAGES):
            envelope = self._request("GET", url, params=params)
            data = envelope.get("data")
            if not isinstance(data, list):
                raise AccountApiError(
                    f"Account API list of {resource} did not return a list",
                    status=200,
                    body=envelope,
                    method="GET",
                    url=url,
                )
            results.extend(result.from_api(item) for item in data if isinstance(item, Mapping))
            pagination = envelope.get("pagination")
            if single_page or not data or not isinstance(pagination, Mapping):
                break
            total = _parse_int(pagination.get("total"))
            offset = (_parse_int(pagination.get("offset")) or 0) + len(data)
            if total is None or offset >= total:
                break
            params = {**params, "offset": str(offset)}
        return results

    def _retrieve(self, resource: str, object_id: str, result: type[Resource]) -> Resource:
        return result.from_api(self._object("GET", self.url(resource, object_id)))

    def _cancel(self, resource: str, object_id: str, result: type[Resource]) -> Resource:
        return result.from_api(self._object("DELETE", self.url(resource, object_id)))

    def _create(
        self, resource: str, payload: Mapping[str, Any], result: type[Resource]
    ) -> Resource:
        body = {name: _payload_value(value) for name, value in payload.items() if value is not None}
        return result.from_api(self._object("POST", self.url(resource), json=body))

    def _object(self, method: str, url: str, **kwargs: Any) -> Mapping[str, Any]:
        data = self._request(method, url, **kwargs).get("data")
        if not isinstance(data, Mapping):
            raise AccountApiError(
                f"Account API {method} {url} did not return an object",
                status=200,
                body=data,
                method=method,
                url=url,
            )
        return data

    def _request(self, method: str, url: str, **kwargs: Any) -> Mapping[str, Any]:
        """The envelope of a successful call; raises :class:`AccountApiError` otherwise."""
        session = self._retrying_session if method in RETRIED_METHODS else self._single_shot_session
        log_context = {"preset": self.preset.name, "method": method, "url": url}
        try:
            response = session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            logger.warning("Account API unreachable: %s", type(error).__name__, extra=log_context)
            raise AccountConnectionError(
                f"Account API {method} {url} failed: {type(error).__name__}",
                may_have_arrived=may_have_arrived(error),
                method=method,
                url=url,
            ) from error
        return self._unwrap(response, method=method, url=url)

    def _unwrap(self, response: requests.Response, *, method: str, url: str) -> Mapping[str, Any]:
        try:
            envelope = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested beyond the parser's stack
            envelope = None
        status = response.status_code
        if isinstance(envelope, Mapping):
            errors = envelope.get("errors") or {}
            success = envelope.get("success", status < 400)
        else:
            errors = {}
            success = False
        if status < 400 and success is not False and isinstance(envelope, Mapping):
            return envelope

        body = envelope if envelope is not None else response.text[:_MAX_TEXT_BODY]
        error_class = _error_class(status)
        # What the platform says, by the one rule of an error answer's reason: one line,
        # bounded, our key hidden (the envelope's errors, or its text). The message, the
        # log, and what callers store from it (a billing row's last_error) say no more.
        reason = answer_reason(
            response,
            hide=sent_credentials(username=self.preset.api_id, password=self.preset.api_key),
        )
        said = f": {reason}" if reason else ""
        logger.warning(
            "Account API error %s%s",
            status,
            said,
            extra={"preset": self.preset.name, "method": method, "url": url, "status": status},
        )
        raise error_class(
            f"Account API answered {status}{said} ({method} {url})",
            status=status,
            errors=errors if isinstance(errors, Mapping) else {"base": flatten_errors(errors)},
            body=body,
            method=method,
            url=url,
        )


def _error_class(status: int) -> type[AccountApiError]:
    if status == 401:
        return AccountAuthenticationError
    if status in (400, 422):
        return AccountValidationError
    if status == 404:
        return AccountNotFoundError
    return AccountApiError
