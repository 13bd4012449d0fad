"""Fields of each Connec! entity (docs/protocol.md, 'Entities') and their validation.

Known fields are type-checked strictly (a number must be a JSON number, an enum
one of its values); unknown fields are tolerated and stored as sent, like
Connec!'s extensible data model, so an app may round-trip fields this hub does
not model. ``null`` clears any field that is not required. Envelope fields
(``group_id``, ``channel_id``, ``resource_type``, ``created_at``,
``updated_at``) are the hub's and are ignored on input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from maestrano_integration import times
from maestrano_integration.times import NotATime

from .clock import normalize_timestamp
from .errors import Problem

READ_ONLY_FIELDS = frozenset(
    {"group_id", "channel_id", "resource_type", "created_at", "updated_at"}
)
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
MAX_TEXT_LENGTH = 10_000


class FieldType:
    """A field's rule: ``clean`` returns the value to store or appends to ``problems``."""

    label = "a value"

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        return value

    def openapi(self) -> dict[str, Any]:
        """The rule as an OpenAPI 3.0 schema (docs/openapi/sandbox.yaml)."""
        return {}


class Text(FieldType):
    label = "a string"

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": MAX_TEXT_LENGTH}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if not isinstance(value, str):
            problems.append(Problem(f"{pointer_name(pointer)} must be a string", pointer))
        elif len(value) > MAX_TEXT_LENGTH:
            problems.append(
                Problem(f"{pointer_name(pointer)} is longer than {MAX_TEXT_LENGTH}", pointer)
            )
        return value


class Email(Text):
    def openapi(self) -> dict[str, Any]:
        return {**super().openapi(), "pattern": f"^({EMAIL_PATTERN.pattern[1:-1]})?$"}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        value = super().clean(value, pointer, problems)
        if isinstance(value, str) and value and not EMAIL_PATTERN.match(value):
            problems.append(Problem(f"{value!r} is not an email address", pointer))
        return value


class Currency(Text):
    def openapi(self) -> dict[str, Any]:
        return {**super().openapi(), "pattern": CURRENCY_PATTERN.pattern}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        value = super().clean(value, pointer, problems)
        if isinstance(value, str) and not CURRENCY_PATTERN.match(value):
            problems.append(Problem(f"{value!r} is not an ISO 4217 code like AUD", pointer))
        return value


class Boolean(FieldType):
    def openapi(self) -> dict[str, Any]:
        return {"type": "boolean"}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if not isinstance(value, bool):
            problems.append(Problem(f"{pointer_name(pointer)} must be true or false", pointer))
        return value


class Number(FieldType):
    def openapi(self) -> dict[str, Any]:
        return {"type": "number"}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(Problem(f"{pointer_name(pointer)} must be a number", pointer))
        return value


class Integer(FieldType):
    def openapi(self) -> dict[str, Any]:
        return {"type": "integer"}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(Problem(f"{pointer_name(pointer)} must be an integer", pointer))
        return value


@dataclass
class Enum(FieldType):
    values: tuple[str, ...]

    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if value not in self.values:
            allowed = "|".join(self.values)
            problems.append(Problem(f"{pointer_name(pointer)} must be one of {allowed}", pointer))
        return value


class DateTime(FieldType):
    def openapi(self) -> dict[str, Any]:
        return {"type": "string", "description": "ISO 8601 date or date-time (stored in UTC)."}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        try:
            return normalize_timestamp(value)
        except NotATime as error:
            message = f"{pointer_name(pointer)} must be an ISO 8601 date or date-time"
            if error.reason != times.NOT_ISO:
                message += f" ({error.reason})"
            problems.append(Problem(message, pointer))
        return value


@dataclass
class Reference(FieldType):
    """The id of another record of the same group: a Connec! id, or an external-id list.

    Only the shape is checked here; ``services`` resolves it against the group.
    """

    entity: str

    def openapi(self) -> dict[str, Any]:
        return {
            "description": f"A {self.entity} id, or its external ids.",
            "anyOf": [{"type": "string", "minLength": 1}, ID_LIST],
        }

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value and all(is_id_entry(e) for e in value):
            return value
        problems.append(
            Problem(
                f"{pointer_name(pointer)} must be a {self.entity} id or a list of "
                '{"id", "provider", "realm"} entries',
                pointer,
            )
        )
        return value


@dataclass
class Object(FieldType):
    """A nested object: its known keys are checked, unknown keys kept."""

    fields: dict[str, FieldType]
    required: tuple[str, ...] = ()

    def openapi(self) -> dict[str, Any]:
        return object_openapi(self.fields)

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if not isinstance(value, dict):
            problems.append(Problem(f"{pointer_name(pointer)} must be an object", pointer))
            return value
        return clean_object(self.fields, value, pointer, problems)


@dataclass
class ListOf(FieldType):
    item: FieldType

    def openapi(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.openapi()}

    def clean(self, value: Any, pointer: str, problems: list[Problem]) -> Any:
        if not isinstance(value, list):
            problems.append(Problem(f"{pointer_name(pointer)} must be a list", pointer))
            return value
        return [self.item.clean(v, f"{pointer}/{i}", problems) for i, v in enumerate(value)]


@dataclass(frozen=True)
class EntitySchema:
    fields: dict[str, FieldType]
    # Each tuple: at least one of these fields must be present and not empty.
    required: tuple[tuple[str, ...], ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    code_prefix: str = ""


def is_id_entry(value: Any) -> bool:
    """``{"id": "...", "provider": "...", "realm": "..."}`` (realm may be empty).

    Written out rather than as a loop: a batch checks each entry several times.
    """
    if not isinstance(value, dict):
        return False
    record_id, provider = value.get("id"), value.get("provider")
    return (
        isinstance(record_id, str)
        and record_id != ""
        and isinstance(provider, str)
        and provider != ""
        and isinstance(value.get("realm"), str)
    )


def pointer_name(pointer: str) -> str:
    """``/people/email/address`` -> ``email.address`` (the entity root is dropped)."""
    parts = pointer.strip("/").split("/")
    return ".".join(parts[1:]) or parts[0]


#: External ids: ``[{"id", "provider", "realm"}, ...]`` (docs/protocol.md, 'External ids').
ID_LIST = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "provider": {"type": "string", "minLength": 1},
            "realm": {"type": "string"},
        },
        "required": ["id", "provider", "realm"],
    },
}


def object_openapi(fields: dict[str, FieldType]) -> dict[str, Any]:
    """Known fields typed, ``null`` clearing any of them, unknown fields kept as sent."""
    return {
        "type": "object",
        "properties": {name: {**rule.openapi(), "nullable": True} for name, rule in fields.items()},
        "additionalProperties": True,
    }


def clean_object(
    fields: dict[str, FieldType], value: dict[str, Any], pointer: str, problems: list[Problem]
) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            continue
        rule = fields.get(key)
        if item is None or rule is None:
            cleaned[key] = item
        else:
            cleaned[key] = rule.clean(item, f"{pointer}/{key}", problems)
    return cleaned


ADDRESS_LINES = Object(
    {
        "line1": Text(),
        "line2": Text(),
        "city": Text(),
        "region": Text(),
        "postal_code": Text(),
        "country": Text(),
    }
)
ADDRESS = Object({"billing": ADDRESS_LINES, "shipping": ADDRESS_LINES})
EMAIL = Object({"address": Email(), "address2": Email()})
PHONE = Object({"landline": Text(), "landline2": Text(), "mobile": Text(), "fax": Text()})
WEBSITE = Object({"url": Text()})
PRICE = Object(
    {
        "net_amount": Number(),
        "tax_amount": Number(),
        "total_amount": Number(),
        "tax_rate": Number(),
        "currency": Currency(),
    }
)
ACTIVE_STATUS = Enum(("ACTIVE", "INACTIVE"))

SCHEMAS: dict[str, EntitySchema] = {
    "organizations": EntitySchema(
        fields={
            "code": Text(),
            "name": Text(),
            "status": ACTIVE_STATUS,
            "description": Text(),
            "industry": Text(),
            "is_customer": Boolean(),
            "is_supplier": Boolean(),
            "is_lead": Boolean(),
            "tax_number": Text(),
            "number_of_employees": Integer(),
            "annual_revenue": Number(),
            "email": EMAIL,
            "phone": PHONE,
            "website": WEBSITE,
            "address": ADDRESS,
        },
        required=(("name",),),
        defaults={"status": "ACTIVE", "is_customer": False, "is_supplier": False},
        code_prefix="OR",
    ),
    "people": EntitySchema(
        fields={
            "code": Text(),
            "status": ACTIVE_STATUS,
            "title": Text(),
            "first_name": Text(),
            "last_name": Text(),
            "job_title": Text(),
            "birth_date": DateTime(),
            "is_customer": Boolean(),
            "is_supplier": Boolean(),
            "is_lead": Boolean(),
            "organization_id": Reference("organizations"),
            "email": EMAIL,
            "phone": PHONE,
            "website": WEBSITE,
            "address": ADDRESS,
        },
        required=(("first_name", "last_name"),),
        defaults={"status": "ACTIVE"},
        code_prefix="PE",
    ),
    "items": EntitySchema(
        fields={
            "code": Text(),
            "name": Text(),
            "description": Text(),
            "status": ACTIVE_STATUS,
            "type": Enum(("PURCHASED", "SOLD", "INVENTORY", "SERVICE", "MANUFACTURED")),
            "unit": Text(),
            "is_inventoried": Boolean(),
            "quantity_on_hand": Number(),
            "sale_price": PRICE,
            "purchase_price": PRICE,
        },
        required=(("name",),),
        defaults={"status": "ACTIVE"},
        code_prefix="IT",
    ),
    "invoices": EntitySchema(
        fields={
            "code": Text(),
            "title": Text(),
            "type": Enum(("CUSTOMER", "SUPPLIER")),
            "status": Enum(("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED")),
            "transaction_number": Text(),
            "transaction_date": DateTime(),
            "due_date": DateTime(),
            "currency": Currency(),
            "public_note": Text(),
            "private_note": Text(),
            "total_amount": Number(),
            "tax_amount": Number(),
            "balance": Number(),
            "deposit": Number(),
            "organization_id": Reference("organizations"),
            "person_id": Reference("people"),
            "lines": ListOf(
                Object(
                    {
                        "id": Text(),
                        "line_number": Integer(),
                        "description": Text(),
                        "quantity": Number(),
                        "unit_price": PRICE,
                        "total_price": PRICE,
                        "item_id": Reference("items"),
                    }
                )
            ),
        },
        defaults={"type": "CUSTOMER", "status": "DRAFT"},
        code_prefix="IN",
    ),
    "company": EntitySchema(
        fields={
            "name": Text(),
            "currency": Currency(),
            "timezone": Text(),
            "tax_number": Text(),
            "email": EMAIL,
            "phone": PHONE,
            "website": WEBSITE,
            "address": ADDRESS,
        },
        required=(("name",),),
    ),
}


def clean_fields(entity: str, payload: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Type-check ``payload``'s known fields; drop the envelope fields. No required check here:
    a partial update is checked once merged (:func:`missing_required`)."""
    problems: list[Problem] = []
    body = {k: v for k, v in payload.items() if k not in READ_ONLY_FIELDS and k != "id"}
    cleaned = clean_object(SCHEMAS[entity].fields, body, f"/{entity}", problems)
    return cleaned, problems


def missing_required(entity: str, data: dict[str, Any]) -> list[Problem]:
    problems = []
    for alternatives in SCHEMAS[entity].required:
        if not any(data.get(name) not in (None, "") for name in alternatives):
            names = " or ".join(alternatives)
            problems.append(Problem(f"{names} can't be blank", f"/{entity}/{alternatives[0]}"))
    return problems


def map_references(
    fields: dict[str, FieldType],
    data: dict[str, Any],
    transform: Callable[[str, str, Any], Any],
    pointer: str,
) -> dict[str, Any]:
    """A copy of ``data`` with ``transform(pointer, target_entity, value)`` applied to every
    non-null reference, nested objects and lists included."""
    result = dict(data)
    for key, rule in _reference_fields(fields):
        value = data.get(key)
        if value is None:
            continue
        path = f"{pointer}/{key}"
        if isinstance(rule, Reference):
            result[key] = transform(path, rule.entity, value)
        elif isinstance(rule, Object) and isinstance(value, dict):
            result[key] = map_references(rule.fields, value, transform, path)
        elif isinstance(rule, ListOf) and isinstance(rule.item, Object) and isinstance(value, list):
            result[key] = [
                map_references(rule.item.fields, v, transform, f"{path}/{i}")
                if isinstance(v, dict)
                else v
                for i, v in enumerate(value)
            ]
    return result


# ``id(fields)`` -> (fields, its fields that hold references, directly or nested).
_REFERENCE_FIELDS: dict[int, tuple[dict[str, FieldType], list[tuple[str, FieldType]]]] = {}


def _reference_fields(fields: dict[str, FieldType]) -> list[tuple[str, FieldType]]:
    """The ``(key, rule)`` of ``fields`` that can hold a reference, computed once per schema:
    every write, answer and notification maps a record's references, and most fields
    (names, emails, addresses) hold none."""
    cached = _REFERENCE_FIELDS.get(id(fields))
    if cached is not None and cached[0] is fields:
        return cached[1]
    found = [(key, rule) for key, rule in fields.items() if _holds_reference(rule)]
    _REFERENCE_FIELDS[id(fields)] = (fields, found)
    return found


def _holds_reference(rule: FieldType) -> bool:
    if isinstance(rule, Reference):
        return True
    if isinstance(rule, Object):
        return any(_holds_reference(r) for r in rule.fields.values())
    if isinstance(rule, ListOf) and isinstance(rule.item, Object):
        return _holds_reference(rule.item)
    return False


def entity_references(entity: str, data: dict[str, Any]) -> list[Any]:
    """Every non-null reference value in ``data`` (to prefetch what rendering needs)."""
    found: list[Any] = []

    def collect(pointer: str, target: str, value: Any) -> Any:
        found.append(value)
        return value

    map_references(SCHEMAS[entity].fields, data, collect, f"/{entity}")
    return found


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A partial update: nested objects merge key by key; lists and scalars replace."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def sub_record_fields(entity: str) -> list[str]:
    """The fields of ``entity`` holding sub-records with ids of their own (invoice ``lines``)."""
    return [
        name
        for name, rule in SCHEMAS[entity].fields.items()
        if isinstance(rule, ListOf) and isinstance(rule.item, Object) and "id" in rule.item.fields
    ]


def merge_record(
    entity: str, base: dict[str, Any], changes: dict[str, Any], *, new_id: Callable[[], str]
) -> dict[str, Any]:
    """``deep_merge``, except that sub-record lists keep their records' ids
    (docs/protocol.md, 'Sub-records'): a sub-record sent with the id of one of the
    record's own is merged into it (omitted fields kept), one without an id is added
    with a new id, one the list omits is removed; a bare ``{"id"}`` of a sub-record
    that no longer exists is dropped (it asked to keep a record that is gone)."""
    lists = [name for name in sub_record_fields(entity) if name in changes]
    merged = deep_merge(base, {key: value for key, value in changes.items() if key not in lists})
    for name in lists:
        merged[name] = merge_sub_records(base.get(name), changes[name], new_id=new_id)
    return merged


def merge_sub_records(current: Any, changes: Any, *, new_id: Callable[[], str]) -> Any:
    if not isinstance(changes, list):
        return changes  # null clears the list
    known = {
        line["id"]: line
        for line in (current if isinstance(current, list) else ())
        if isinstance(line, dict) and isinstance(line.get("id"), str)
    }
    merged: list[Any] = []
    kept: set[str] = set()
    for line in changes:
        if not isinstance(line, dict):
            merged.append(line)
            continue
        line_id = line.get("id")
        if isinstance(line_id, str) and line_id in known and line_id not in kept:
            kept.add(line_id)
            merged.append(deep_merge(known[line_id], line))
        elif line_id and set(line) == {"id"}:
            continue
        else:
            merged.append({"id": new_id(), **{k: v for k, v in line.items() if k != "id"}})
    return merged
