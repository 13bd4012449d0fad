def test_landing_page_offers_maestrano_login(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Log in with Maestrano" in response.content
    assert b'href="/maestrano/auth/saml/init"' in response.content
