"""The POST forms of an HTML page as a browser would send them (hidden and text inputs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class PostForm:
    id: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[PostForm] = []
        self._open: PostForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and values.get("method", "").lower() == "post":
            self._open = PostForm(id=values.get("id", ""), action=values.get("action", ""))
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and "name" in values:
            self._open.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def post_forms(html: str) -> list[PostForm]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def post_form(html: str, form_id: str) -> PostForm:
    """The POST form ``form_id`` of the page (raises ``StopIteration`` without it)."""
    return next(form for form in post_forms(html) if form.id == form_id)
