"""Connec! list parameters: ``$top``, ``$skip``, ``$orderby`` and ``$filter``, as DRF
filter backends (:class:`ConnecFilter`, :class:`ConnecOrdering`) and a DRF pagination
class (:class:`ConnecPagination`), used by the HTTP API and the batch's GET ops alike.

Supported ``$filter``: conditions joined by ``and``; ``updated_at``,
``created_at`` and ``id`` take ``eq ne gt ge lt le`` with a quoted value; any
other (possibly dotted) field, e.g. ``code eq 'X'`` or
``email.address eq 'a@b.c'``, takes ``eq``/``ne`` with a quoted string, a
number, ``true``, ``false`` or ``null``. Anything else is a 400, never a guess.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import F, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.db.models.fields.json import KT, KeyTextTransform, KeyTransform
from rest_framework.filters import BaseFilterBackend
from rest_framework.pagination import BasePagination

from maestrano_integration.connec_wire import MAX_PAGE_SIZE
from maestrano_integration.times import NotATime, excerpt, platform_time

from .errors import ConnecApiError

DEFAULT_TOP = 100
MAX_TOP = MAX_PAGE_SIZE
OPERATORS = {"eq": "exact", "gt": "gt", "ge": "gte", "lt": "lt", "le": "lte", "ne": "exact"}
COLUMN_FIELDS = {"updated_at": "updated_at", "created_at": "created_at", "id": "uid"}
FIELD_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
CONDITION = re.compile(
    rf"\s*(?P<field>{FIELD_PATTERN})\s+(?P<op>eq|ne|gt|ge|lt|le)\s+"
    r"(?P<value>'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|null)\s*",
    re.IGNORECASE,
)
AND = re.compile(r"and\b", re.IGNORECASE)
ORDER_TERM = re.compile(rf"^\s*(?P<field>{FIELD_PATTERN})(?:\s+(?P<dir>asc|desc))?\s*$", re.I)


def bad_request(detail: str) -> ConnecApiError:
    return ConnecApiError.single(400, detail)


#: Larger ``$skip`` values overflow the databases' OFFSET (a 64-bit integer).
MAX_SKIP = 2**62


def parse_int(
    raw: str | None, *, name: str, default: int, minimum: int, maximum: int = MAX_SKIP
) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw[:40]!r}") from None
    if value < minimum:
        raise bad_request(f"{name} must be at least {minimum}")
    if value > maximum:
        raise bad_request(f"{name} must be at most {maximum}")
    return value


def parse_value(raw: str) -> Any:
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        number = float(raw) if "." in raw else int(raw)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise bad_request(f"The number {raw[:40]}... in $filter has too many digits") from None
    # A float beyond 1.8e308 is inf: not JSON, PostgreSQL's jsonb refuses to compare with it.
    if isinstance(number, float) and not math.isfinite(number):
        raise bad_request(f"The number {raw[:40]}... in $filter is out of range")
    return number


def data_path(field: str) -> str:
    return "data__" + field.replace(".", "__")


def json_key(field: str) -> KeyTransform:
    """``email.address`` -> key ``address`` of key ``email`` of the ``data`` JSON, each part a
    key whatever its name (``contains`` or ``in`` is no lookup here). Filter on it through
    an alias (see :class:`Filter`), so that Django prepares the compared value as usual."""
    expression: Any = F("data")
    for key in field.split("."):
        expression = KeyTransform(key, expression)
    return expression


@dataclass(frozen=True)
class Filter:
    """A parsed ``$filter``: a ``Q`` over the columns and the aliases of its JSON keys."""

    condition: Q
    aliases: dict[str, KeyTransform]

    def apply(self, queryset: QuerySet) -> QuerySet:
        return queryset.alias(**self.aliases).filter(self.condition)


def condition_to_q(field: str, operator: str, raw_value: str, aliases: dict[str, Any]) -> Q:
    value = parse_value(raw_value)
    operator = operator.lower()
    if field in COLUMN_FIELDS:
        column = COLUMN_FIELDS[field]
        if not isinstance(value, str):
            raise bad_request(
                f"{field} needs a quoted value, e.g. {field} gt '2016-10-04T00:00:00Z'"
            )
        try:
            value = uuid.UUID(value) if column == "uid" else platform_time(value, required=True)
        except NotATime as error:
            raise bad_request(f"{excerpt(value)} is not a valid {field}: {error.reason}") from None
        except ValueError:
            raise bad_request(f"{excerpt(value)} is not a valid {field}") from None
        if column == "uid" and operator not in ("eq", "ne"):
            raise bad_request("id only supports eq and ne")
        condition = Q(**{f"{column}__{OPERATORS[operator]}": value})
    else:
        if operator not in ("eq", "ne"):
            raise bad_request(f"{field} only supports eq and ne")
        alias = f"connec_key_{len(aliases)}"
        aliases[alias] = json_key(field)
        condition = Q(**{alias: value})
    return ~condition if operator == "ne" else condition


def parse_filter(raw: str | None) -> Filter:
    """``updated_at gt '2016-10-04T00:00:00Z' and code eq 'X'`` -> a :class:`Filter`."""
    result = Q()
    aliases: dict[str, KeyTransform] = {}
    if not raw or not raw.strip():
        return Filter(result, aliases)
    position, text = 0, raw.strip()
    while True:
        match = CONDITION.match(text, position)
        if match is None:
            raise bad_request(
                f"Cannot parse $filter at {text[position:]!r}: expected "
                "<field> eq|ne|gt|ge|lt|le <value>, joined by 'and'"
            )
        result &= condition_to_q(match["field"], match["op"], match["value"], aliases)
        position = match.end()
        if position == len(text):
            return Filter(result, aliases)
        joiner = AND.match(text, position)
        if joiner is None:
            raise bad_request(f"Only 'and' may join $filter conditions, at {text[position:]!r}")
        position = joiner.end()


def parse_orderby(raw: str | None) -> list[OrderBy]:
    """``updated_at desc, name`` -> orderings, with the primary key last so the order is total."""
    ordering: list[OrderBy] = []
    for term in (raw or "").split(","):
        if not term.strip():
            continue
        match = ORDER_TERM.match(term)
        if match is None:
            raise bad_request(
                f"Cannot parse $orderby term {term.strip()!r}: expected <field> asc|desc"
            )
        field, descending = match["field"], (match["dir"] or "asc").lower() == "desc"
        expression: F | KeyTextTransform
        if field == "id":
            expression = F("pk")
        elif field in COLUMN_FIELDS:
            expression = F(COLUMN_FIELDS[field])
        else:
            expression = KT(data_path(field))
        ordering.append(expression.desc() if descending else expression.asc())
    ordering.append(F("pk").asc())
    return ordering


class ConnecFilter(BaseFilterBackend):
    """``$filter`` (:func:`parse_filter`): a DRF filter backend. ``request`` is anything with
    ``query_params``: a DRF request, or a batch op
    (:class:`maestrano_sandbox.connec.api.Operation`)."""

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any = None) -> QuerySet:
        return parse_filter(request.query_params.get("$filter")).apply(queryset)


class ConnecOrdering(BaseFilterBackend):
    """``$orderby`` (:func:`parse_orderby`), the primary key last: a DRF filter backend."""

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any = None) -> QuerySet:
        return queryset.order_by(*parse_orderby(request.query_params.get("$orderby")))


FILTER_BACKENDS = (ConnecFilter, ConnecOrdering)


class ConnecPagination(BasePagination):
    """``$top`` (default 100, at most 500: larger is cut to 500) and ``$skip``: a DRF
    pagination class. The answer's ``pagination`` object holds ``skip``, ``top``, ``total``
    and, when there are more records, the ``next`` (``previous``) page's URL."""

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> list[Any]:
        query = request.query_params
        top = parse_int(query.get("$top"), name="$top", default=DEFAULT_TOP, minimum=1)
        self.top = min(top, MAX_TOP)
        self.skip = parse_int(query.get("$skip"), name="$skip", default=0, minimum=0)
        self.request = request
        self.total = queryset.count()
        self.page = list(queryset[self.skip : self.skip + self.top])
        return self.page

    def pagination(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"skip": self.skip, "top": self.top, "total": self.total}
        if self.skip + len(self.page) < self.total:
            fields["next"] = self.page_url(skip=self.skip + self.top)
        if self.skip > 0:
            fields["previous"] = self.page_url(skip=max(self.skip - self.top, 0))
        return fields

    def page_url(self, *, skip: int) -> str:
        query = {k: v for k, v in self.request.query_params.items() if not k.startswith("opts[")}
        query["$skip"] = str(skip)
        return f"{self.request.collection_url}?{urlencode(query)}"
