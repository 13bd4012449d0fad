"""One function per mapping class that applies a Connec! record to a model instance
(import): what ``_Mapping.apply_fields`` does, built once from the declarations.

The import applies every mapped field of every record and invoice line; a loop over
the declarations paid, per value, for unpacking the plan, a call to read the dotted
path, a call to ``setattr`` and the loop itself. The function made here has one block
per declaration, written out: the path read inline (``dict.get`` per part), the
field's converter (:func:`maestrano_sync.values.converter_for`) called, the value stored.

Safety: the generated source holds only names made here (``path_3``, ``convert_3``);
every value from the declarations (field names, paths, entities, converters) is bound
in the function's namespace, never written into the source, so no declaration can
change the code. Behaviour is the loop's: same values, same order, same messages
(``tests/sync/test_field_apply.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from maestrano_integration.model_fields import model_field
from maestrano_integration.strict_input import find_unsafe_text

from .values import MappingError, connec_id_of, converter_for, text_shortcut

#: What a path read gives when a part is absent (or null on the way).
MISSING = object()

#: What a path read gives when a value stands where an object was expected on the way
#: (``"email": "a@b.c"`` when ``email.address`` is read): a problem of the record.
NOT_AN_OBJECT = object()

#: (Connec! record, instance, reference resolver) → None; raises :class:`MappingError`.
Applier = Callable[[Mapping[str, Any], models.Model, Any], None]


def get_parts(data: Any, parts: tuple[str, ...]) -> Any:
    """The value at the path ``parts`` in ``data``: :data:`MISSING` when absent or null on
    the way, :data:`NOT_AN_OBJECT` when another value stands where an object was expected."""
    current: Any = data
    for part in parts:
        if type(current) is dict:  # JSON objects: no need for the (slower) Mapping check
            current = current.get(part, MISSING)
            if current is MISSING:
                return MISSING
            continue
        if current is MISSING or current is None:
            return MISSING
        if current is NOT_AN_OBJECT or not isinstance(current, Mapping):
            return NOT_AN_OBJECT
        if part not in current:
            return MISSING
        current = current[part]
    return current


def not_an_object(data: Mapping[str, Any], path: str) -> str:
    """The problem of reading ``path`` in ``data`` where a value stands for an object."""
    parts = path.split(".")
    current: Any = data
    for i, part in enumerate(parts[:-1]):
        current = current.get(part)
        if current is not None and not isinstance(current, Mapping):
            return f"{path}: {'.'.join(parts[: i + 1])} is not an object"
    return f"{path}: not an object on the way"


def make_applier(
    model: type[models.Model],
    fields: Mapping[str, str],
    references: Mapping[str, tuple[str, str]],
) -> Applier:
    """The apply function of a mapping's ``fields`` and ``references`` on ``model``.

    Fields first, in declaration order, then references: each value present in the
    record is converted and set; the problems of all of them are gathered and raised
    as one :class:`MappingError` (``"path: message; path: message"``).
    """
    namespace: dict[str, Any] = {
        "MISSING": MISSING,
        "NOT_AN_OBJECT": NOT_AN_OBJECT,
        "not_an_object": not_an_object,
        "get_parts": get_parts,
        "ValidationError": ValidationError,
        "MappingError": MappingError,
        "connec_id_of": connec_id_of,
        "find_unsafe_text": find_unsafe_text,
    }
    body: list[str] = []
    for n, (name, path) in enumerate(fields.items()):
        field = model_field(model, name)
        namespace[f"path_{n}"] = path
        namespace[f"convert_{n}"] = converter_for(field)
        namespace[f"attname_{n}"] = field.attname
        store = (
            f"state[attname_{n}] = value"
            if _plain_attribute(model, field.attname)
            else f"setattr(instance, attname_{n}, value)"
        )
        body += _read_path("value", path, f"field_{n}", namespace)
        shortcut = text_shortcut(field)
        if shortcut is not None:
            # What the converter returns first for plain text, without calling it.
            max_length, blank = shortcut
            namespace[f"max_length_{n}"] = max_length
            body += [
                "if (",
                "    type(value) is str",
                *([] if blank else ["    and value != ''"]),
                *([] if max_length is None else [f"    and len(value) <= max_length_{n}"]),
                "    and find_unsafe_text(value) is None",
                "):",
                f"    {store}",
                "elif value is not MISSING:",
            ]
        else:
            body += ["if value is not MISSING:"]
        body += [
            "    try:",
            f"        value = convert_{n}(value, instance)",
            "    except ValidationError as error:",
            f"        problems.append(path_{n} + ': ' + '; '.join(error.messages))",
            "    else:",
            f"        {store}",
        ]
    for n, (name, (connec_field, entity)) in enumerate(references.items()):
        field = model_field(model, name)
        namespace[f"ref_path_{n}"] = connec_field
        namespace[f"ref_entity_{n}"] = entity
        namespace[f"ref_attname_{n}"] = field.attname
        absent = (
            [f"setattr(instance, ref_attname_{n}, None)"]
            if field.null
            else [f"problems.append(ref_path_{n} + ': required')"]
        )
        body += _read_path("value", connec_field, f"ref_{n}", namespace)
        body += [
            "if value is not MISSING:",
            "    try:",
            # A reference's Connec! entry is chosen in the record's realm (one rule: values).
            "        connec_id = connec_id_of(value, record=data)",
            "        if connec_id is None:",
            *(f"            {line}" for line in absent),
            "        else:",
            f"            value = references.local_pk(ref_entity_{n}, connec_id)",
            f"            setattr(instance, ref_attname_{n}, value)",
            "    except MappingError as error:",
            f"        problems.append(ref_path_{n} + ': ' + str(error))",
        ]
    source = "\n".join(
        [
            "def apply(data, instance, references):",
            "    state = instance.__dict__",
            "    problems = []",
            *(f"    {line}" for line in body),
            "    if problems:",
            "        raise MappingError('; '.join(problems))",
        ]
    )
    code = compile(source, f"<apply of {model._meta.label}>", "exec")
    exec(code, namespace)  # noqa: S102 -- generated from names made above, see the module
    return namespace["apply"]


def _read_path(target: str, path: str, prefix: str, namespace: dict[str, Any]) -> list[str]:
    """Lines reading the dotted ``path`` of ``data`` into ``target`` (``MISSING`` when
    absent), a ``dict.get`` per part; anything but a dict goes through :func:`get_parts`.
    A value on the way where an object was expected is a problem, the path read as absent."""
    lines = []
    source = "data"
    parts = path.split(".")
    for i, part in enumerate(parts):
        namespace[f"{prefix}_{i}"] = part
        namespace[f"{prefix}_{i}_parts"] = (part,)
        lines.append(
            f"{target} = {source}.get({prefix}_{i}, MISSING) if type({source}) is dict "
            f"else get_parts({source}, {prefix}_{i}_parts)"
        )
        source = target
    if len(parts) > 1:
        # A value where an object was expected: the record's problem, the field not set.
        namespace[f"{prefix}_path"] = path
        lines += [
            f"if {target} is NOT_AN_OBJECT:",
            f"    problems.append(not_an_object(data, {prefix}_path))",
            f"    {target} = MISSING",
        ]
    return lines


def _plain_attribute(model: type[models.Model], attname: str) -> bool:
    """Setting ``attname`` on an instance only stores it in the instance's ``__dict__``:
    the model does not override ``__setattr__`` and the class attribute (Django's
    ``DeferredAttribute``, or nothing) is not a data descriptor."""
    if model.__setattr__ is not object.__setattr__:
        return False
    descriptor = getattr(model, attname, None)
    return not hasattr(type(descriptor), "__set__")
