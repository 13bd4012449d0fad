"""Fixtures of the ``maestrano_integration`` tests."""

from __future__ import annotations

import pytest
from django.db import connection

from maestrano_integration import bulk_insert


@pytest.fixture(params=["document", "values"])
def sqlite_statement_form(request, monkeypatch):
    """Run a test with each of ``bulk_insert``'s two statement forms on SQLite: the rows as
    one JSON document (where SQLite has its JSON functions) and the multi-row ``VALUES`` /
    ``executemany`` of a SQLite without them. PostgreSQL has one form: ``"values"`` is
    skipped there."""
    if request.param == "values":
        if connection.vendor != "sqlite":
            pytest.skip("one statement form on PostgreSQL")
        monkeypatch.setattr(bulk_insert, "_reads_documents", lambda connection: False)
    bulk_insert._shape.cache_clear()  # statements are kept per shape
    yield request.param
    bulk_insert._shape.cache_clear()
