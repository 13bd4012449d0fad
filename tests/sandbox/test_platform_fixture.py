"""The shared live-server fixture: app and sandbox answer on one loopback server."""

import requests


def test_platform_serves_the_app_metadata_to_the_sandbox_credentials(platform):
    response = requests.get(f"{platform.url}/maestrano/metadata", auth=platform.auth, timeout=5)
    assert response.status_code == 200
    assert response.json()["api"]["id"] == platform.api_id
    assert response.json()["sso"]["x509_certificate"] == platform.keys.certificate_pem.strip()
    assert platform.url.startswith("http://localhost:") or platform.url.startswith(
        "http://127.0.0.1:"
    )


def test_sandbox_is_mounted(platform):
    response = requests.get(f"{platform.sandbox_url}/", timeout=5)
    assert response.status_code == 200
