"""Detection of personal data in text: e-mail addresses and payment card numbers.

Card numbers are 13 to 19 digits, written together or in groups separated by one space
or dash, and must pass the Luhn check, so order numbers and other digit runs are left
alone. Only whole digit groups are taken: a card number is never cut out of a longer
group of digits.
"""
from __future__ import annotations

import re

from services.guardrails.spans import Span

EMAIL_PLACEHOLDER = "[EMAIL]"
CARD_PLACEHOLDER = "[CARD]"

CARD_MIN_DIGITS = 13
CARD_MAX_DIGITS = 19

# The look-behind makes a match start only where a local part starts, which keeps the
# scan linear on long runs of address characters that hold no '@'.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_DIGIT_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_DIGIT_GROUP = re.compile(r"[0-9]+")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of ASCII digits."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def find_emails(text: str) -> list[Span]:
    return [Span(m.start(), m.end()) for m in _EMAIL.finditer(text)]


def find_cards(text: str) -> list[Span]:
    """Spans of Luhn-valid card numbers, in order and not overlapping."""
    spans: list[Span] = []
    for run in _DIGIT_RUN.finditer(text):
        groups = [Span(run.start() + g.start(), run.start() + g.end()) for g in _DIGIT_GROUP.finditer(run.group())]
        first = 0
        while first < len(groups):
            last = _longest_card(text, groups, first)
            if last is None:
                first += 1
                continue
            spans.append(Span(groups[first].start, groups[last].end))
            first = last + 1
    return spans


def _longest_card(text: str, groups: list[Span], first: int) -> int | None:
    """Index of the last group of the longest card number starting at group `first`."""
    digits = ""
    found: int | None = None
    for last in range(first, len(groups)):
        digits += text[groups[last].start:groups[last].end]
        if len(digits) > CARD_MAX_DIGITS:
            break
        if len(digits) >= CARD_MIN_DIGITS and luhn_valid(digits):
            found = last
    return found

