"""The repository cites only itself: the wire contract is docs/protocol.md.

Code, comments, docs and tests refer to sections of docs/protocol.md, never to
documents that are not in the repository (a protocol file or numbered seed
documents kept beside it, or a sibling ``shared`` folder).
"""

from __future__ import annotations

import re

from tests.helpers.repository import ROOT, repository_files

#: Citations of documents outside the repository. Written so that this file does not
#: match itself. ``docs/protocol.md`` (lower case) is the repository's own and fine.
EXTERNAL_CITATION = re.compile(
    "|".join(
        [
            r"PROTOCOL(?:\.md| ?\u00a7)",  # the upper-case file name, or "PROTOCOL <section>"
            r"(?i:\bseeds?[ _]?0\d\d\b)",  # numbered seed documents, in any case
            r"(?i:\bseeds[/])",  # a seeds folder
            r"\.\.[/]shared",  # the sibling folder
            r"\u00a7 ?\d",  # a numbered section of some other document
        ]
    )
)


def test_no_file_cites_documents_outside_the_repository():
    offenders = []
    for name in repository_files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # images and other binary files
        for number, line in enumerate(text.splitlines(), start=1):
            if EXTERNAL_CITATION.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "cite docs/protocol.md instead:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_is_meant_to():
    # Assembled from pieces so that this file itself cites nothing.
    seed, protocol, section = "se" + "ed", "PROTO" + "COL", "\u00a7"
    for citation in (
        f"see {protocol}.md",
        f"{protocol} {section}3",
        f"({seed} 003 {section}2.1)",
        f"{seed.title()} 001",
        f"{seed}s 000 and 001",
        f"{seed}s/003.txt",
        "..//shared/DESIGN.md".replace("//", "/"),
    ):
        assert EXTERNAL_CITATION.search(citation), citation
    for fine in (
        "docs/protocol.md, 'Account webhooks'",
        "sandbox_seed --seed 1",
        "seed=42",
    ):
        assert not EXTERNAL_CITATION.search(fine), fine
