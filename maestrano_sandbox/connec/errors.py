"""Connec! API errors: a typed exception and the ``{"errors": [...]}`` body it turns into."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

ERROR_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    404: ("not_found", "Resource not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("request_too_large", "Request entity too large"),
    422: ("validation_error", "Validation failed"),
    429: ("rate_limited", "Too many requests"),
    500: ("server_error", "Internal server error"),
    503: ("service_unavailable", "Service unavailable"),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request; ``pointer`` is a JSON pointer into the body."""

    detail: str
    pointer: str | None = None


@dataclass
class ConnecApiError(Exception):
    """An error answered by the hub, carrying its HTTP status and the problems found."""

    status: int
    problems: list[Problem] = field(default_factory=list)
    title: str | None = None

    @classmethod
    def single(cls, status: int, detail: str, *, pointer: str | None = None) -> ConnecApiError:
        return cls(status=status, problems=[Problem(detail=detail, pointer=pointer)])

    def __str__(self) -> str:
        return f"{self.status}: " + "; ".join(p.detail for p in self.problems)

    def body(self, *, href: str = "") -> dict[str, Any]:
        return error_body(self.status, self.problems or [Problem("")], title=self.title, href=href)


def error_body(
    status: int, problems: list[Problem], *, title: str | None = None, href: str = ""
) -> dict[str, Any]:
    code, default_title = ERROR_CODES.get(status, ("error", "Error"))
    errors = []
    for problem in problems:
        entry: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "href": href,
            "status": str(status),
            "code": code,
            "title": title or default_title,
            "detail": problem.detail,
        }
        if problem.pointer:
            entry["source"] = {"pointer": problem.pointer}
        errors.append(entry)
    return {"errors": errors}
