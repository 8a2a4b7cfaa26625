"""Personal data found by pattern: e-mail addresses, phone numbers and payment card numbers.

Patterns are deliberately strict (phone numbers need separators or a leading ``+``; card
numbers must pass the Luhn check) so that ids, dates and amounts are not reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["PII_KINDS", "find_pii", "luhn_valid", "scan_values"]

PII_KINDS = ("email", "phone", "card_number")

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
                    r"(?![\w-])")
# 555-123-4567, (555) 123 4567, +44 20 7946 0958, 555.123.4567, or E.164 (+15551234567).
# The lookarounds stop a phone from matching inside a longer run of digit groups (a card).
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])"
    r"(?:(?:\+?\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]\d{3,4}[ .-]\d{4}|\+\d{8,15})"
    r"(?![ .-]?\d)(?!\w)"
)
# 13 to 19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find_pii(text: str) -> set[str]:
    """The kinds of personal data that ``text`` contains (a subset of :data:`PII_KINDS`)."""
    found = set()
    if "@" in text and _EMAIL.search(text):
        found.add("email")
    if any(luhn_valid(re.sub(r"[ -]", "", m.group())) for m in _CARD.finditer(text)):
        found.add("card_number")
    if _PHONE.search(text):
        found.add("phone")
    return found


def scan_values(values: Iterable[object]) -> tuple[int, dict[str, int]]:
    """Count the values holding each kind of personal data.

    Returns the number of string values scanned and, per kind found, how many matched.
    """
    scanned = 0
    counts: dict[str, int] = {}
    for value in values:
        if not isinstance(value, str):
            continue
        scanned += 1
        for kind in find_pii(value):
            counts[kind] = counts.get(kind, 0) + 1
    return scanned, counts
