"""The sandbox's Account API schema: the committed docs/openapi/sandbox.yaml is the generated one,
and the sandbox serves it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_sandbox_schema_is_the_generated_one():
    from maestrano_sandbox.schema import render_yaml, sandbox_schema

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


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("users", "GET"),
        ("groups/cld-1", "GET"),
        ("bills", "GET, POST"),
        ("bills/b-1", "GET, DELETE"),
    ],
)
def test_a_405_lists_the_methods_of_its_resource(client, path, allowed):
    # Found by schema fuzzing: read-only resources announced the writable ones' methods.
    import base64

    from maestrano_sandbox.models import RegisteredApp

    RegisteredApp.objects.create(api_id="a-1", api_key="k-1", name="A", app_host="http://a")
    token = base64.b64encode(b"a-1:k-1").decode()

    response = client.put(f"/sandbox/api/v1/account/{path}", HTTP_AUTHORIZATION=f"Basic {token}")

    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert response.json()["errors"]["method"] == [f"PUT is not allowed here; use {allowed}."]
