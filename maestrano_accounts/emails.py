"""When two email addresses are the same person's, for linking accounts (one rule)."""

from __future__ import annotations


def same_email(stored: str, asserted: str) -> bool:
    """Whether a local account's email is the platform user's, for email migration.

    Equal, or equal but for the case of ASCII letters (``Jane@Example.com`` and
    ``jane@example.com``). Addresses with other characters must be identical: Unicode
    case mappings make lookalikes equal (a dotless i and ``i`` once upper-cased, the Kelvin
    sign and ``k`` once lower-cased), and linking hands the account over.
    """
    stored = stored.strip()
    if stored == asserted:
        return True
    return stored.isascii() and asserted.isascii() and stored.lower() == asserted.lower()
