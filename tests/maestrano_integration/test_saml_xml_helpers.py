"""python3-saml's XML helpers as this app runs them (``maestrano_integration.saml``: the
XPath and python3-saml's own schemas kept compiled) answer exactly as the helpers shipped
with python3-saml, for good and bad documents alike."""

from __future__ import annotations

import threading

import pytest
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from maestrano_integration.saml import SHIPPED_XML_HELPERS

PROTOCOL = "saml-schema-protocol-2.0.xsd"
STATUS = (
    f'<samlp:Status><samlp:StatusCode Value="{Saml.STATUS_SUCCESS}"/>'
    "<samlp:StatusMessage>fine</samlp:StatusMessage></samlp:Status>"
)
VALID = (
    f'<samlp:Response xmlns:samlp="{Saml.NS_SAMLP}" xmlns:saml="{Saml.NS_SAML}" ID="_r1" '
    f'Version="2.0" IssueInstant="2026-12-05T00:00:00Z"><saml:Issuer>idp</saml:Issuer>'
    f"{STATUS}</samlp:Response>"
)
DOCUMENTS = {
    "valid": VALID,
    "valid bytes": VALID.encode(),
    "no version": VALID.replace(' Version="2.0"', ""),
    "unknown element": VALID.replace("<saml:Issuer>", "<samlp:Nonsense/><saml:Issuer>"),
    "not xml": "<samlp:Response",
    "empty": "",
    "a number": 42,
}
METADATA = (
    f'<md:EntityDescriptor xmlns:md="{Saml.NS_MD}" entityID="https://idp.example.com">'
    "<md:IDPSSODescriptor "
    'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    "<md:SingleSignOnService "
    'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
    'Location="https://idp.example.com/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>'
)


def answer(result):
    """A validation's answer, comparable: the error string, or the document as text."""
    return result if isinstance(result, str) else etree.tostring(result)


def shipped_validation(xml, schema):
    try:
        return answer(SHIPPED_XML_HELPERS["validate_xml"](xml, schema))
    except Exception as error:  # python3-saml raises on some inputs: so must the app's
        return type(error)


def app_validation(xml, schema):
    try:
        return answer(OneLogin_Saml2_XML.validate_xml(xml, schema))
    except Exception as error:
        return type(error)


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_validation_answers_as_python3_saml_ships_it(name):
    xml = DOCUMENTS[name]

    assert app_validation(xml, PROTOCOL) == shipped_validation(xml, PROTOCOL)
    assert app_validation(xml, PROTOCOL) == shipped_validation(xml, PROTOCOL)  # kept, the same


def test_a_valid_response_is_returned_as_its_document_and_a_bad_one_refused():
    assert app_validation(VALID, PROTOCOL) == etree.tostring(etree.fromstring(VALID))
    assert app_validation(DOCUMENTS["no version"], PROTOCOL) == "invalid_xml"
    assert app_validation(DOCUMENTS["not xml"], PROTOCOL) == "unloaded_xml"


def test_another_of_python3_saml_schemas_is_kept_apart():
    metadata = "saml-schema-metadata-2.0.xsd"

    assert app_validation(METADATA, metadata) == shipped_validation(METADATA, metadata)
    assert app_validation(METADATA, PROTOCOL) == shipped_validation(METADATA, PROTOCOL)
    assert app_validation(METADATA, PROTOCOL) == "invalid_xml"


@pytest.mark.parametrize("schema", ["no-such-schema.xsd", "../schemas/" + PROTOCOL])
def test_a_schema_not_shipped_with_python3_saml_goes_to_python3_saml(schema):
    assert app_validation(VALID, schema) == shipped_validation(VALID, schema)


def test_every_thread_validates_with_its_own_schema():
    answers = []

    def validate():
        answers.append(app_validation(DOCUMENTS["no version"], PROTOCOL))
        answers.append(app_validation(VALID, PROTOCOL))

    threads = [threading.Thread(target=validate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers.count("invalid_xml") == 4
    assert answers.count(etree.tostring(etree.fromstring(VALID))) == 4


QUERIES = [
    ("/samlp:Response/samlp:Status", None, None),
    ("/samlp:Response/samlp:Status/samlp:StatusMessage", "status", None),
    ("//saml:Issuer", None, None),
    ("/samlp:Response[@ID=$tagid]/saml:Issuer", None, "_r1"),
    ("/samlp:Response[@ID=$tagid]/saml:Issuer", None, "_other"),
    ("//saml:Assertion", None, None),
]


@pytest.mark.parametrize(("query", "context", "tagid"), QUERIES)
def test_queries_find_what_python3_saml_finds(query, context, tagid):
    document = etree.fromstring(VALID)
    node = document.find(f"{{{Saml.NS_SAMLP}}}Status") if context else None

    found = OneLogin_Saml2_XML.query(document, query, node, tagid)
    shipped = SHIPPED_XML_HELPERS["query"](document, query, node, tagid)

    assert [etree.tostring(n) for n in found] == [etree.tostring(n) for n in shipped]
