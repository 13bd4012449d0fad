"""What a page's accessibility references point at: its ids, the ``aria-describedby`` of its
fields, and the text of each element with an id (``html.parser``, no dependency)."""

from __future__ import annotations

from html.parser import HTMLParser

_VOID = {"input", "br", "meta", "link", "img", "hr", "area", "base", "col", "source", "wbr"}


class Describedby(HTMLParser):
    """The ids of a page, its inputs' ``aria-describedby`` references, and the text of
    each element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.references: dict[str, list[str]] = {}
        self.texts: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if attributes.get("aria-describedby"):
            self.references[attributes.get("name") or tag] = attributes["aria-describedby"].split()
        if tag not in _VOID:
            self._open.append(attributes.get("id"))

    def handle_endtag(self, tag):
        if tag not in _VOID and self._open:
            self._open.pop()

    def handle_data(self, data):
        for element_id in filter(None, self._open):
            self.texts[element_id] = self.texts.get(element_id, "") + data


def described(page: str) -> Describedby:
    parser = Describedby()
    parser.feed(page)
    return parser


def dangling_references(page: str) -> dict[str, list[str]]:
    """The fields of ``page`` whose ``aria-describedby`` names an id the page lacks."""
    parsed = described(page)
    return {
        name: missing
        for name, references in parsed.references.items()
        if (missing := [reference for reference in references if reference not in parsed.ids])
    }
