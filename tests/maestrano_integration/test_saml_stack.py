"""The XML security stack works: lxml and xmlsec share libxml2, and signatures verify."""

from __future__ import annotations

import lxml.etree
import xmlsec
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from tests.helpers.certificates import make_key_pair

RESPONSE = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" '
    'IssueInstant="2026-01-01T00:00:00Z">'
    "<saml:Issuer>http://idp.test</saml:Issuer>"
    '<saml:Assertion ID="_a1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">'
    "<saml:Issuer>http://idp.test</saml:Issuer>"
    "<saml:Subject><saml:NameID>usr-1</saml:NameID></saml:Subject>"
    "</saml:Assertion></samlp:Response>"
)


def test_lxml_and_xmlsec_use_the_same_libxml2():
    assert lxml.etree.LIBXML_VERSION == xmlsec.get_libxml_version()


def test_python3_saml_signs_and_validates_a_signature():
    keys = make_key_pair()
    signed = OneLogin_Saml2_Utils.add_sign(
        RESPONSE,
        keys.private_key_pem,
        keys.certificate_pem,
        sign_algorithm=OneLogin_Saml2_Constants.RSA_SHA256,
        digest_algorithm=OneLogin_Saml2_Constants.SHA256,
    )
    assert OneLogin_Saml2_Utils.validate_sign(signed, keys.certificate_pem, raise_exceptions=True)

    other = make_key_pair("another-idp")
    assert not OneLogin_Saml2_Utils.validate_sign(signed, other.certificate_pem)

    tampered = signed.replace(b"usr-1", b"usr-2")
    assert not OneLogin_Saml2_Utils.validate_sign(tampered, keys.certificate_pem)
