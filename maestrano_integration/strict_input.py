"""Strict input: one JSON loader and one text rule for everything the platform or a client sends.

Python's :func:`json.loads` is lenient where our databases are not:

* ``NaN``, ``Infinity`` and ``-Infinity`` are accepted (they are not JSON), and a
  number too large for a float (``1e999``) becomes ``inf``; PostgreSQL's ``jsonb``
  refuses all of them and they are no amount of money;
* the escapes ``\\u0000`` (NUL) and lone surrogates (``\\ud800``) give strings that
  PostgreSQL cannot store or even compare (``text`` refuses NUL, UTF-8 has no
  surrogates), so they fail the first query that uses them, and that pages
  cannot render;
* deep nesting raises :class:`RecursionError`, which nobody catches;
* a key repeated in one object silently keeps its last value, so two readers of
  the same document may disagree on what it says.

:func:`loads` refuses all of these with :class:`InputRefused`, whose message
says what and where (a JSONPath such as ``$.organizations[0].name``), for a
400 answer. :func:`text_problem` is the text rule alone, for ids in URLs,
query parameters and credentials; :func:`check_value` applies the rules to
data that was parsed elsewhere (a Connec! page read by ``requests``), or to the
parts of a document :func:`decode` read without them, one by one, so that a
caller can set the bad parts aside (a notification's bad record is parked, the
others are stored).
"""

from __future__ import annotations

import codecs
import decimal
import functools
import json
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Deeper documents are refused: Connec! records nest a few levels (address.billing.city).
MAX_DEPTH = 64

_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
# In UTF-8 bytes (decoded strictly, raw control characters refused by the parser),
# NUL and surrogates can only come from these escapes: without one, strings need no check.
_UNSAFE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


#: ``find_unsafe_text(value) is None`` when ``value`` is safe text: the check alone, for
#: loops that cannot afford a call per value (maestrano_sync.field_apply).
find_unsafe_text = _UNSAFE_TEXT.search


class InputRefused(ValueError):
    """Input we refuse; ``str(error)`` says why, fit for a 400 answer."""


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or queried (NUL, lone surrogate), or ``None``."""
    match = _UNSAFE_TEXT.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone surrogate (\\u{ord(match.group()):04x})"


def is_safe_text(value: str) -> bool:
    return _UNSAFE_TEXT.search(value) is None


def escape_unsafe(value: str) -> str:
    """``value`` with NUL and lone surrogates written as escapes (``\\x00``, ``\\ud800``):
    for text that must be stored or shown whatever it holds (a reason, a page)."""
    if is_safe_text(value):
        return value
    escaped = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


def _refuse_constant(name: str) -> Any:
    raise InputRefused(f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InputRefused(f"the number {text[:40]} is out of range")
    return value


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise InputRefused(f"the number {text[:40]}... has too many digits") from None


def _keep_int(text: str) -> int | decimal.Decimal:
    """:func:`decode`'s integers: one with more digits than Python converts is kept as a
    :class:`~decimal.Decimal` (its digits kept, in linear time), which :func:`check_value`
    refuses, so that only the part of the document holding it is set aside."""
    try:
        return int(text)
    except ValueError:
        return decimal.Decimal(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputRefused(f"the key {_printable(key)!r} is repeated in one object")
            seen.add(key)
    return value


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse standard JSON (RFC 8259) we can store; raise :class:`InputRefused` otherwise."""
    value = _parse(data, max_depth=max_depth, finite=True)
    strings = not isinstance(data, (bytes, bytearray)) or _UNSAFE_ESCAPE.search(data) is not None
    # Our parse_float/parse_constant already refused non-finite numbers.
    check_value(value, max_depth=max_depth, strings=strings, numbers=False)
    return value


def decode(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON that :func:`loads` may refuse only for what some of its values hold.

    The document must still be JSON we can read as one meaning (UTF-8, no key repeated in
    an object, nesting its parser reaches); ``NaN``, ``Infinity``, numbers that overflow
    (as ``float`` ``nan``/``inf``), integers of more digits than Python converts (as
    :class:`~decimal.Decimal`), NUL, lone surrogates and deep nesting are kept, for a
    caller that checks the parts of the
    document one by one with :func:`check_value` and sets the bad ones aside (a
    notification's records: one bad record is parked, the others are stored).
    """
    return _parse(data, max_depth=max_depth, finite=False)


def _parse(data: bytes | bytearray | str, *, max_depth: int, finite: bool) -> Any:
    """``json.loads`` with keys unique, and with ``finite`` numbers only; the reasons
    it cannot parse as :class:`InputRefused`."""
    numbers: dict[str, Any] = (
        {"parse_constant": _refuse_constant, "parse_float": _parse_float, "parse_int": _parse_int}
        if finite
        else {"parse_int": _keep_int}
    )
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text, object_pairs_hook=_unique_keys, **numbers)
    except InputRefused as error:
        raise InputRefused(f"not valid JSON ({error})") from None
    except RecursionError:
        raise InputRefused(f"not valid JSON (nested deeper than {max_depth} levels)") from None
    except UnicodeDecodeError as error:
        raise InputRefused(
            f"not valid JSON (not UTF-8: {error.reason} at byte {error.start})"
        ) from None
    except ValueError as error:  # json.JSONDecodeError
        raise InputRefused(f"not valid JSON ({error})") from None


def check_value(
    value: Any,
    *,
    max_depth: int = MAX_DEPTH,
    strings: bool = True,
    numbers: bool = True,
    root: str = "$",
    depth: int = 0,
) -> None:
    """Refuse parsed JSON that :func:`loads` would refuse (depth, numbers, text).

    Iterative, so any depth is measured without recursion. ``strings=False``
    skips the text rule (when the raw input showed no escape that could break
    it), ``numbers=False`` the check of floats. ``root`` and ``depth`` place ``value``
    in its document (``"$.organizations[1]"`` at depth 2), for a part checked on its own.
    A node is ``(value, depth, parent node, key)``: the path is only spelled out for
    the error message.
    """
    if not (strings or numbers):
        _check_depth(value, max_depth=max_depth, root=root, depth=depth)
        return
    stack: list[tuple[Any, int, Any, Any]] = [(value, depth, None, None)]
    while stack:
        node = stack.pop()
        current, depth = node[0], node[1]
        if isinstance(current, dict):
            if depth >= max_depth:
                raise InputRefused(f"{_path(node, root)} is nested deeper than {max_depth} levels")
            for key, item in current.items():
                if strings and isinstance(key, str) and (problem := text_problem(key)):
                    raise InputRefused(f"a key of {_path(node, root)} {problem}")
                stack.append((item, depth + 1, node, key))
        elif isinstance(current, list):
            if depth >= max_depth:
                raise InputRefused(f"{_path(node, root)} is nested deeper than {max_depth} levels")
            for index, item in enumerate(current):
                stack.append((item, depth + 1, node, index))
        elif isinstance(current, str):
            if strings and (problem := text_problem(current)):
                raise InputRefused(f"{_path(node, root)} {problem}")
        elif numbers and isinstance(current, float) and not math.isfinite(current):
            raise InputRefused(f"{_path(node, root)} is {current}, not a JSON number")
        elif numbers and isinstance(current, decimal.Decimal):  # kept by decode()
            digits = len(current.as_tuple().digits)
            raise InputRefused(
                f"{_path(node, root)} has {digits} digits, more than a number may have"
            )


def _check_depth(value: Any, *, max_depth: int, root: str = "$", depth: int = 0) -> None:
    """:func:`check_value` for depth alone: only containers are visited (the common case)."""
    containers = (dict, list)
    if value.__class__ not in containers:
        return
    stack: list[tuple[Any, int, Any, Any]] = [(value, depth, None, None)]
    while stack:
        node = stack.pop()
        current, depth = node[0], node[1]
        if depth >= max_depth:
            raise InputRefused(f"{_path(node, root)} is nested deeper than {max_depth} levels")
        children = current.items() if isinstance(current, dict) else enumerate(current)
        stack.extend(
            (item, depth + 1, node, key) for key, item in children if item.__class__ in containers
        )


def _path(node: tuple[Any, int, Any, Any], root: str = "$") -> str:
    """``$.organizations[0].name`` for a node of :func:`check_value` (``root``: where the
    checked value is in its document)."""
    parts: list[str] = []
    while node[2] is not None:
        key = node[3]
        parts.append(f"[{key}]" if isinstance(key, int) else f".{_printable(str(key))}")
        node = node[2]
    return root + "".join(reversed(parts))


def _printable(text: str) -> str:
    """A key for a message: unsafe characters escaped, long keys cut."""
    return escape_unsafe(text if len(text) <= 60 else text[:60] + "…")


def check_texts(values: Mapping[str, Any] | Iterable[tuple[str, Any]], *, what: str) -> None:
    """Refuse named text values (URL ids, query parameters) that break :func:`text_problem`.

    ``what`` names the collection in the message: ``check_texts(request.GET.items(),
    what="query parameter")`` → ``query parameter 'q' contains a NUL character``.
    """
    items = values.items() if isinstance(values, Mapping) else values
    for name, value in items:
        if problem := text_problem(name):
            raise InputRefused(f"a {what} name {problem}")
        if isinstance(value, str) and (problem := text_problem(value)):
            raise InputRefused(f"{what} {_printable(name)!r} {problem}")


# --- text in a declared character set ------------------------------------------------------


#: Bytes a charset must read, strictly (a :class:`UnicodeDecodeError` at worst) and with
#: ``errors="replace"`` (never an error), as Django reads query strings and forms with it.
_CHARSET_PROBES = (bytes(range(256)), b"xn--=1&a..b=%FF")


@functools.lru_cache(maxsize=64)  # a few names arrive on every request
def charset_problem(charset: str) -> str | None:
    """Why no text can be read in ``charset`` (a ``Content-Type``'s ``charset``
    parameter), or ``None``.

    It names no codec (Python's lookup raises :class:`LookupError`, or
    :class:`ValueError` for a NUL in the name); or a codec that is no text encoding
    (``rot13``, ``base64``, ``zlib``: ``bytes.decode`` refuses them); or a text encoding
    whose decoder fails on bytes it cannot read instead of reporting them, or does not
    replace them (``idna``, ``punycode``, ``undefined``). Django reads a request's query
    string and form in its charset and would fail on each of these (a 500).
    """
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):  # ValueError: "embedded null character"
        return "names no character encoding"
    for probe in _CHARSET_PROBES:
        for errors in ("strict", "replace"):
            try:
                probe.decode(charset, errors)
            except UnicodeDecodeError:
                pass  # bad bytes reported, as Django expects
            except LookupError:
                return "is not a text encoding"
            except Exception:  # a codec is any code (idna: UnicodeError, others...)
                return "is an encoding that fails on bytes it cannot read"
    return None


#: A percent-escape of a byte outside ASCII (``%80`` to ``%FF``).
_ESCAPED_HIGH_BYTE = re.compile(rb"%[89A-Fa-f][0-9A-Fa-f]")


def check_form_body(body: bytes) -> None:
    """Refuse an ``application/x-www-form-urlencoded`` body that is not UTF-8 text.

    Such a form is UTF-8 (Django refuses another declared charset), but Django reads it
    leniently: bytes that are not valid UTF-8 become U+FFFD, so a form field would hold
    text the client never sent. Here the body, and each name and value once
    percent-decoded (``+`` a space, fields split on ``&`` as Django splits them), must
    decode strictly; :class:`InputRefused` names the first field that does not, and where.
    """
    if body.isascii() and not _ESCAPED_HIGH_BYTE.search(body):
        return  # every byte, percent-decoded or not, is ASCII: text (an ACS post, in C)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputRefused(
            f"the form is not valid UTF-8 ({error.reason} at byte {error.start})"
        ) from None
    for field in body.split(b"&"):
        if not field:
            continue
        name, _, value = field.partition(b"=")
        name_text = _form_text(name, what="a form field name")
        _form_text(value, what=f"form field {_printable(name_text)!r}")


def _form_text(encoded: bytes, *, what: str) -> str:
    raw = urllib.parse.unquote_to_bytes(encoded.replace(b"+", b" "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputRefused(
            f"{what} is not valid UTF-8 once percent-decoded ({error.reason} at byte {error.start})"
        ) from None


# --- one list of a document, element by element ------------------------------------------

#: A JSON string, or a character that gives a document its structure (numbers, ``true``,
#: ``false`` and ``null`` are left to the parser of each part).
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]', re.DOTALL)
#: How much of an unreadable element's text :class:`Unreadable` keeps.
UNREADABLE_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Unreadable:
    """An element of a list that :func:`decode_list_member` could not read: why, and the
    start of its text."""

    reason: str
    text: str


def decode_list_member(data: bytes | bytearray | str, *, key: str) -> dict[str, Any]:
    """A JSON object whose member ``key`` is a list, each element of the list read on its
    own (:func:`decode`, then :func:`check_value` for numbers, depth included): an element
    that breaks them (nested deeper than any parser reads, an integer of more digits than
    Python converts, ``NaN``) is an :class:`Unreadable` in its place, the others are read.

    For a document :func:`json.loads` could not read (a Connec! page holding one such
    record): the other elements are kept. Raises :class:`InputRefused` when the rest of the
    document cannot be read (not an object, a member other than ``key`` unreadable).
    The structure is found by one pass over its strings and brackets, without recursion.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as error:
        raise InputRefused(f"not valid JSON (not UTF-8: {error.reason})") from None
    members, items = _split_members(text, key=key)
    document: dict[str, Any] = {}
    for name, (start, end) in members.items():
        if name == key and items is not None:
            document[name] = [
                _read_element(text[first:last], where=f"$.{_printable(key)}[{index}]")
                for index, (first, last) in enumerate(items)
            ]
        else:
            document[name] = decode(text[start:end])
    return document


def _read_element(text: str, *, where: str) -> Any:
    try:
        value = decode(text)
        check_value(value, root=where, depth=2, strings=False)
    except InputRefused as error:
        reason = str(error) if str(error).startswith(where) else f"{where}: {error}"
        return Unreadable(reason=reason, text=text.strip()[:UNREADABLE_TEXT_CHARS])
    return value


def _split_members(
    text: str, *, key: str
) -> tuple[dict[str, tuple[int, int]], list[tuple[int, int]] | None]:
    """The spans of the top object's members' values, and of each element of ``key``'s list
    (``None``: ``key``'s value is no list)."""
    members: dict[str, tuple[int, int]] = {}
    items: list[tuple[int, int]] | None = None
    depth, name, start, end = 0, None, -1, -1
    in_list, item_start = False, -1
    for match in _STRUCTURE.finditer(text):
        token, at = match.group(), match.start()
        if token in "{[":
            if depth == 0 and (token != "{" or text[:at].strip()):
                raise InputRefused("not a JSON object")
            if depth == 1 and name == key and token == "[" and not text[start:at].strip():
                in_list, item_start, items = True, at + 1, []
            depth += 1
        elif token in "}]":
            if depth == 2 and in_list and items is not None:
                if text[item_start:at].strip() or items:
                    items.append((item_start, at))
                in_list = False
            elif depth == 1 and name is not None:
                members, name = _member(members, name, start, at), None
            depth -= 1
            if depth == 0:
                end = at + 1
                break
            if depth < 0:
                raise InputRefused("not valid JSON (unbalanced brackets)")
        elif token == "," and depth == 1 and name is not None:
            members, name = _member(members, name, start, at), None
        elif token == "," and depth == 2 and in_list and items is not None:
            items.append((item_start, at))
            item_start = at + 1
        elif token == ":" and depth == 1:
            start = at + 1
        elif token.startswith('"') and depth == 1 and name is None:
            name = decode(token)
    if end < 0 or text[end:].strip():
        raise InputRefused("not valid JSON (not one object)")
    return members, items


def _member(
    members: dict[str, tuple[int, int]], name: str, start: int, end: int
) -> dict[str, tuple[int, int]]:
    if name in members:
        raise InputRefused(f"the key {_printable(name)!r} is repeated in one object")
    members[name] = (start, end)
    return members
