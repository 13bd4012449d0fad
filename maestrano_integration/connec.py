"""Connec! API v2 client (docs/protocol.md, 'Connec! API v2'): one group of one preset, over a
pooled session.

Retry rule (one place):

* GET and PUT are idempotent: the transport retries them on connection errors,
  5xx and 429 (honouring ``Retry-After``) with exponential backoff and jitter.
* POST (create, batch) is *not* retried by the transport after the request may
  have reached Connec!: a create that timed out may have been applied. Pass
  ``idempotent=True`` when a repeat is harmless, i.e. an upsert carrying our own
  external id (docs/protocol.md, 'External ids') or a batch whose every op is such an upsert or a
  GET/PUT; then POST gets the same retries as GET. A batch of only GET/PUT ops
  is detected as idempotent automatically.
* 4xx other than 429 are never retried.

Errors raise :class:`ConnecError` subclasses carrying the HTTP status and the
Connec! ``errors`` list.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from . import strict_input
from .conf import Preset, get_preset, maestrano_settings
from .connec_wire import EXTERNAL_IDS_HEADER, MAX_PAGE_SIZE, MEDIA_TYPE, record_path
from .http import (
    IDEMPOTENT_METHODS,
    PlatformHTTPError,
    answer_reason,
    build_retry,
    build_session,
    document_reason,
    path_segment,
    sent_credentials,
)

if TYPE_CHECKING:
    from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

DEFAULT_ORDERBY = "updated_at asc"


# --- errors -------------------------------------------------------------------------


class ConnecError(PlatformHTTPError):
    """Connec! answered with an error (or could not be reached: ``status is None``).

    ``errors`` is Connec!'s list of ``{"id", "href", "status", "code", "title",
    "detail"}`` objects (empty when the body had none).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        body: Any = None,
        retry_after: float | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message, status=status, errors=errors or [], body=body)
        self.retry_after = retry_after
        #: What Connec! said, by :func:`~maestrano_integration.http.answer_reason`'s rule
        #: (one line, at most 200 characters, our credentials hidden): for logs and the
        #: texts a person reads (``details`` and ``errors`` are Connec!'s, as answered).
        self.reason = reason

    @property
    def details(self) -> list[str]:
        """Human-readable messages from the ``errors`` list."""
        return [
            str(error.get("detail") or error.get("title") or error.get("code") or error)
            for error in self.errors
            if isinstance(error, Mapping)
        ]


class ConnecNetworkError(ConnecError):
    """Connec! could not be reached (connection refused, timeout) after the retries."""


class ConnecAuthenticationError(ConnecError):
    """401: the preset's api id/key were refused. Retrying will not help."""


class ConnecNotFoundError(ConnecError):
    """404: unknown group, entity or record id."""


class ConnecValidationError(ConnecError):
    """400/422: Connec! rejected the payload; ``errors`` says why."""


class ConnecRateLimitError(ConnecError):
    """429 still answered after the retries; ``retry_after`` is the server's hint."""


class ConnecServerError(ConnecError):
    """5xx still answered after the retries: transient, try again later."""


def _error_class(status: int) -> type[ConnecError]:
    if status == 401:
        return ConnecAuthenticationError
    if status == 404:
        return ConnecNotFoundError
    if status in (400, 422):
        return ConnecValidationError
    if status == 429:
        return ConnecRateLimitError
    if status >= 500:
        return ConnecServerError
    return ConnecError


# --- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a list: its ``$skip``, the records and the collection's total."""

    skip: int
    records: list[dict[str, Any]]
    total: int | None

    @property
    def next_skip(self) -> int:
        return self.skip + len(self.records)


@dataclass(frozen=True)
class BatchResult:
    """One op's outcome in a batch: each op succeeds or fails on its own.

    ``status`` is :data:`NO_STATUS` when Connec!'s result holds no HTTP status (not an
    object, no status, a status that is no number): the op's outcome is unknown, and
    ``body`` is the result as answered.
    """

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


#: :attr:`BatchResult.status` of a result that holds no HTTP status.
NO_STATUS = 0


def _batch_result(result: Any) -> BatchResult:
    """One result of a batch answer (``{"status": 201, "body": {...}}``); a status written
    as text (``"201"``) is read as its number, anything else is :data:`NO_STATUS`."""
    status = result.get("status") if isinstance(result, Mapping) else None
    if isinstance(status, str) and len(status) == 3 and status.isascii() and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        return BatchResult(status=NO_STATUS, body=result)
    return BatchResult(status=status, body=result.get("body"))


# --- client -------------------------------------------------------------------------


def build_connec_retry(*, methods: Iterable[str] = IDEMPOTENT_METHODS) -> Retry:
    """The transport retry policy of the Connec! client, tuned by ``MAESTRANO["CONNEC"]``."""
    transport = maestrano_settings.connec()
    return build_retry(
        total=transport.http_retries,
        backoff_factor=transport.backoff_factor,
        backoff_jitter=transport.backoff_jitter,
        backoff_max=transport.backoff_max,
        methods=methods,
    ).new(retry_after_max=transport.retry_after_max)


class ConnecClient:
    """Connec! API v2 for one group (``cld-…``) of one preset.

    ``external_ids=True`` sends ``CONNEC-EXTERNAL-IDS: true`` on every call, so
    ids and references come back as lists of ``{"realm", "provider", "id"}``.
    """

    def __init__(
        self,
        *,
        preset: Preset | str | None = None,
        group_id: str,
        external_ids: bool = False,
    ) -> None:
        self.preset = preset if isinstance(preset, Preset) else get_preset(preset)
        self.group_id = group_id
        self.external_ids = external_ids
        self.timeout = self.preset.connec_timeout
        headers = {"Accept": f"{MEDIA_TYPE}, application/json", "Content-Type": MEDIA_TYPE}
        if external_ids:
            headers[EXTERNAL_IDS_HEADER] = "true"
        auth = (self.preset.api_id, self.preset.api_key)
        self._session = build_session(
            auth=auth, retry=build_connec_retry(), headers=headers, api="connec"
        )
        # POSTs the caller declared idempotent share the GET policy; built on first use.
        self._idempotent_post_session: requests.Session | None = None
        self._auth = auth
        self._headers = headers
        #: Never quoted in a reason (:func:`~maestrano_integration.http.answer_reason`).
        self._credentials = sent_credentials(
            username=self.preset.api_id, password=self.preset.api_key
        )

    def __repr__(self) -> str:
        return f"<ConnecClient preset={self.preset.name!r} group={self.group_id!r}>"

    def close(self) -> None:
        self._session.close()
        if self._idempotent_post_session is not None:
            self._idempotent_post_session.close()

    def __enter__(self) -> ConnecClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- URLs -------------------------------------------------------------------
    @property
    def api_root(self) -> str:
        """``{connec.host}{connec.base_path}``: the API root, without the group."""
        return f"{self.preset.connec_host}{self.preset.connec_base_path}"

    def entity_path(self, entity: str, record_id: str | None = None) -> str:
        """The path of an entity (or record) relative to the host, as batch ops use it
        (:func:`~maestrano_integration.connec_wire.record_path`: the group uid and the
        record id are one segment each; ``ValueError`` for an empty id, ``.`` or ``..``)."""
        return record_path(
            base_path=self.preset.connec_base_path,
            group_id=self.group_id,
            entity=entity,
            record_id=record_id,
        )

    def entity_url(self, entity: str, record_id: str | None = None) -> str:
        return self.preset.connec_host + self.entity_path(entity, record_id)

    @property
    def batch_url(self) -> str:
        return f"{self.preset.connec_host}/batch"

    # --- reads ------------------------------------------------------------------
    def iter_pages(
        self,
        entity: str,
        *,
        filter: str | None = None,
        orderby: str | None = DEFAULT_ORDERBY,
        page_size: int | None = None,
        skip: int = 0,
        external_ids: bool = False,
    ) -> Iterator[Page]:
        """Yield the pages of ``entity`` from ``$skip=skip`` on, one request each.

        ``external_ids=True`` asks for these pages' ids and references as external-id
        lists (``CONNEC-EXTERNAL-IDS: true``) whatever the client's own setting.

        Callers that checkpoint (the initial import) store ``page.next_skip``
        after each page and pass it back as ``skip`` to resume.

        The list ends with an empty page, or a page shorter than ``$top`` once the total
        is reached (or Connec! gives none): a full page is never the last, whatever the
        total says, which only shows progress (:func:`_is_last`). An answer that is no page
        of ``entity`` (not a JSON object holding its list), or that repeats the previous
        page (a hub ignoring ``$skip``), raises :class:`ConnecError`: never read as the end
        of the list, nor fetched again forever.
        """
        top = min(max(page_size or maestrano_settings.connec().page_size, 1), MAX_PAGE_SIZE)
        previous: tuple[int, builtins.list[Any]] | None = None
        headers = {EXTERNAL_IDS_HEADER: "true"} if external_ids else None
        while True:
            params: dict[str, Any] = {"$top": top, "$skip": skip}
            if orderby:
                params["$orderby"] = orderby
            if filter:
                params["$filter"] = filter
            body = self._request(
                "GET",
                self.entity_url(entity),
                params=params,
                headers=headers,
                entity=entity,
                page_of=entity,
            )
            if (problem := _page_problem(body, entity)) is not None:
                raise ConnecError(
                    f"Connec! answered no page of {entity!r} at $skip={skip}: {problem}",
                    status=200,
                    body=body,
                    reason=document_reason(body, hide=self._credentials),
                )
            records = body[entity]
            if isinstance(records, Mapping):
                # A singleton resource (``company``): one record, one page.
                yield Page(skip=skip, records=[dict(records)], total=1)
                return
            seen = _page_fingerprint(records)
            if records and previous is not None and seen == previous[1]:
                raise ConnecError(
                    f"Connec! answered the same page of {entity!r} at $skip={skip} as at "
                    f"$skip={previous[0]}: it does not page by $skip",
                    status=200,
                    body=body,
                )
            pagination = body.get("pagination")
            total = pagination.get("total") if isinstance(pagination, Mapping) else None
            page = Page(skip=skip, records=records, total=_record_count(total))
            yield page
            if _is_last(page, top=top):
                return
            previous = (skip, seen)
            skip = page.next_skip

    def list(
        self,
        entity: str,
        *,
        filter: str | None = None,
        orderby: str | None = DEFAULT_ORDERBY,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of ``entity`` matching ``filter``, fetched page by page."""
        for page in self.iter_pages(entity, filter=filter, orderby=orderby, page_size=page_size):
            yield from page.records

    def retrieve(self, entity: str, record_id: str) -> dict[str, Any]:
        """One record by its Connec! id (``ConnecNotFoundError`` when unknown)."""
        body = self._request("GET", self.entity_url(entity, record_id), entity=entity)
        return self._unwrap(body, entity)

    def retrieve_by_external_id(
        self, entity: str, record_id: str, *, provider: str, realm: str
    ) -> dict[str, Any]:
        """One record by an external id of ours (``opts[provider]``, ``opts[realm]``)."""
        body = self._request(
            "GET",
            self.entity_url(entity, record_id),
            params={"opts[provider]": provider, "opts[realm]": realm},
            headers={EXTERNAL_IDS_HEADER: "true"},
            entity=entity,
        )
        return self._unwrap(body, entity)

    def retrieve_singleton(self, entity: str = "company") -> dict[str, Any]:
        """A resource the group has exactly one of (``company``), not a list."""
        return self._unwrap(self.get(f"/{entity}"), entity)

    # --- path-based calls, as in the reference SDKs ------------------------------
    def url_for(self, path: str) -> str:
        """``/people/123`` (relative to the group) → the absolute URL of the call."""
        if not path.startswith("/"):
            path = f"/{path}"
        return f"{self.api_root}/{path_segment(self.group_id)}{path}"

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """``GET`` a path relative to the group (``/organizations``, ``/company``); the body."""
        return self._request("GET", self.url_for(path), params=params)

    def post(self, path: str, body: Mapping[str, Any], *, idempotent: bool = False) -> Any:
        """``POST`` ``body`` (e.g. ``{"people": {...}}``); not retried unless ``idempotent``."""
        return self._request("POST", self.url_for(path), json=body, idempotent=idempotent)

    def put(self, path: str, body: Mapping[str, Any]) -> Any:
        """``PUT`` ``body`` to a path relative to the group; retried (idempotent)."""
        return self._request("PUT", self.url_for(path), json=body)

    def delete(self, path: str) -> Any:
        """``DELETE`` a path relative to the group; retried (idempotent)."""
        return self._request("DELETE", self.url_for(path))

    # --- writes -----------------------------------------------------------------
    def create(
        self, entity: str, data: Mapping[str, Any], *, idempotent: bool = False
    ) -> dict[str, Any]:
        """POST a record. ``idempotent=True`` only for an upsert carrying our external id."""
        body = self._request(
            "POST", self.entity_url(entity), json={entity: data}, idempotent=idempotent
        )
        return self._unwrap(body, entity)

    def update(self, entity: str, record_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a record by its Connec! id (idempotent, so retried)."""
        body = self._request("PUT", self.entity_url(entity, record_id), json={entity: data})
        return self._unwrap(body, entity)

    def batch(
        self,
        ops: Iterable[Mapping[str, Any]],
        *,
        sequential: bool = True,
        idempotent: bool | None = None,
    ) -> builtins.list[BatchResult]:  # ``list`` alone: the method above
        """POST ``/batch``; each op is ``{"method", "url", "params"}`` (``url`` from
        :meth:`entity_path`). Returns one :class:`BatchResult` per op, in order.

        ``idempotent=None`` decides from the ops: retried only when none is a
        POST. Pass ``True`` when every POST is an external-id upsert.
        """
        ops = [dict(op) for op in ops]
        if idempotent is None:
            idempotent = all(str(op.get("method", "")).upper() in IDEMPOTENT_METHODS for op in ops)
        body = self._request(
            "POST",
            self.batch_url,
            json={"sequential": sequential, "ops": ops},
            idempotent=idempotent,
        )
        results = body.get("results") if isinstance(body, Mapping) else None
        if not isinstance(results, list):
            raise ConnecError("Connec! batch answer has no results list", status=200, body=body)
        return [_batch_result(result) for result in results]

    # --- transport --------------------------------------------------------------
    def _session_for(self, method: str, *, idempotent: bool) -> requests.Session:
        if method != "POST" or not idempotent:
            return self._session
        if self._idempotent_post_session is None:
            self._idempotent_post_session = build_session(
                auth=self._auth,
                retry=build_connec_retry(methods=IDEMPOTENT_METHODS | {"POST"}),
                headers=self._headers,
                api="connec",
            )
        return self._idempotent_post_session

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        entity: str | None = None,
        page_of: str | None = None,
    ) -> Any:
        """The answer's JSON (text when it is none); raises :class:`ConnecError` for a 4xx
        or 5xx. ``page_of``: the answer is a page of that entity's list, whose records are
        read one by one when the page cannot be read whole (:func:`_json_or_text`)."""
        session = self._session_for(method, idempotent=idempotent)
        context = {
            "preset": self.preset.name,
            "group": self.group_id,
            "entity": entity,
            "method": method,
        }
        try:
            response = session.request(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as error:
            logger.warning("Connec! unreachable: %s", error.__class__.__name__, extra=context)
            raise ConnecNetworkError(
                f"Connec! unreachable ({method} {url}): {error.__class__.__name__}"
            ) from error
        body = _json_or_text(response, page_of=page_of if response.ok else None)
        if response.status_code >= 400:
            error_class = _error_class(response.status_code)
            errors = body.get("errors") if isinstance(body, Mapping) else None
            errors = (
                [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []
            )
            retry_after = _retry_after_seconds(response)
            reason = answer_reason(response, hide=self._credentials)
            refused = error_class(
                f"Connec! answered {response.status_code} to {method} {url}",
                status=response.status_code,
                errors=errors,
                body=body,
                retry_after=retry_after,
                reason=reason,
            )
            logger.warning(
                "Connec! error %s: %s",
                response.status_code,
                reason,
                extra={**context, "status": response.status_code},
            )
            raise refused
        return body

    @staticmethod
    def _unwrap(body: Any, entity: str) -> dict[str, Any]:
        record = body.get(entity) if isinstance(body, Mapping) else None
        if not isinstance(record, dict):
            raise ConnecError(f"Connec! answer has no {entity!r} object", status=200, body=body)
        return record


def _page_problem(body: Any, entity: str) -> str | None:
    """Why ``body`` is no page of ``entity`` (docs/protocol.md, 'Pagination': a JSON object
    holding the entity's list, or its one record for a singleton), or ``None``."""
    if not isinstance(body, Mapping):
        return "not a JSON object"
    records = body.get(entity)
    if records is None:
        return f"no {entity!r} list"
    if not isinstance(records, (builtins.list, Mapping)):
        return f"its {entity!r} is not a list"
    return None


def _page_fingerprint(records: builtins.list[Any]) -> builtins.list[Any]:
    """What tells a page from the next one: each record's ``id`` and ``updated_at``,
    taken before the page is handed on (its reader may change the records)."""
    return [
        (record.get("id"), record.get("updated_at")) if isinstance(record, Mapping) else record
        for record in records
    ]


def _record_count(value: Any) -> int | None:
    """A page's ``pagination.total`` when it can count records (a non-negative integer)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _is_last(page: Page, *, top: int) -> bool:
    """Whether no page follows ``page``: it is empty, or shorter than ``top`` (the page size
    asked) and Connec!'s total, if it gave one, is reached. A full page is never the last:
    a total that lies low would otherwise leave the rest of the list unread."""
    if not page.records:
        return True
    if len(page.records) >= top:
        return False
    return page.total is None or page.next_skip >= page.total


def _json_or_text(response: requests.Response, *, page_of: str | None = None) -> Any:
    """The answer's JSON, or the start of its text when it is none.

    ``page_of``: a page of that entity's list, which ``json`` could not read whole (a record
    nested deeper than it reads, an integer of more digits than Python converts): its records
    are read one by one, each one that cannot be read is an
    :class:`~maestrano_integration.strict_input.Unreadable` in its place, so that it alone is
    set aside (:func:`~maestrano_integration.strict_input.decode_list_member`). A page that
    reads whole, the usual one, never takes that path."""
    if not response.content:
        return {}
    try:
        return response.json()
    except (ValueError, RecursionError):  # not JSON, or nested beyond the parser's stack
        if page_of is not None:
            try:
                return strict_input.decode_list_member(response.content, key=page_of)
            except strict_input.InputRefused:
                pass  # no page of records: the import says so (_page_problem)
        return response.text[:2000]


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def connec_client_for(company: Any, *, external_ids: bool = False) -> ConnecClient:
    """The client for a company (anything with ``preset`` and ``group_uid``)."""
    return ConnecClient(
        preset=get_preset(company.preset), group_id=company.group_uid, external_ids=external_ids
    )
