"""The sandbox's Account API schema: the committed docs/openapi/sandbox.yaml is the generated one,
and the sandbox serves it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_sandbox_schema_is_the_generated_one():
    from sandbox.schema import render_yaml, sandbox_schema

    committed = (ROOT / "docs" / "openapi" / "sandbox.yaml").read_text()

    assert render_yaml(sandbox_schema()) == committed, (
        "docs/openapi/sandbox.yaml is out of date: run `make openapi` and commit the file"
    )


@pytest.mark.django_db(databases="__all__")
def test_the_sandbox_serves_its_schema(client):
    response = client.get("/sandbox/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/sandbox/api/v1/account/bills" in paths
    assert set(paths["/sandbox/api/v1/account/users"]) == {"get"}
