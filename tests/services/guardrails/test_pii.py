from __future__ import annotations

import pytest

from services.guardrails.checks import Policy, check_input
from services.guardrails.pii import find_cards, find_emails, luhn_valid
from services.guardrails.spans import Span, replace_spans
from shared.config import GuardrailsConfig


def matched(text: str, spans: list[Span]) -> list[str]:
    return [text[span.start:span.end] for span in spans]


@pytest.mark.parametrize("number", [
    "4111111111111111",  # Visa
    "5555555555554444",  # Mastercard
    "378282246310005",  # Amex, 15 digits
    "6011111111111117",  # Discover
    "4222222222222",  # 13 digits
    "4111111111111111110",  # 19 digits
])
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "5555555555554445", "1234567890123", "", "41a1", "٤١١١"])
def test_luhn_rejects_invalid_numbers(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("written", [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111-1111 1111-1111",
    "3782 822463 10005",
])
def test_finds_card_numbers_in_any_grouping(written: str) -> None:
    text = f"my card is {written}, thanks"
    assert matched(text, find_cards(text)) == [written]


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",  # fails Luhn
    "order 1234567890123",  # 13 digits, fails Luhn
    "call 555 0100",  # too short
    "id 41111111111111111115",  # 20 digits, Luhn-valid but too long
    "4111  1111  1111  1111",  # double spaces are not one number
    "tracking 123456789041111111111111111",  # a card is never cut out of a longer group
])
def test_ignores_digit_runs_that_are_not_cards(text: str) -> None:
    assert find_cards(text) == []


def test_card_followed_by_more_digit_groups_is_still_found() -> None:
    text = "4111 1111 1111 1111 12 25 and 5555-5555-5555-4444"
    assert matched(text, find_cards(text)) == ["4111 1111 1111 1111", "5555-5555-5555-4444"]


def test_finds_email_addresses() -> None:
    text = "Write Jane.Doe+news@mail.example.co.uk or bob@ex.com. Not a@b, not @x.com, not bob@"
    assert matched(text, find_emails(text)) == ["Jane.Doe+news@mail.example.co.uk", "bob@ex.com"]


def test_email_scan_stays_fast_on_a_long_run_without_at_sign() -> None:
    text = "a" * 200_000 + " x@y.io"
    assert matched(text, find_emails(text)) == ["x@y.io"]


PII_ONLY = Policy.from_config(GuardrailsConfig())  # default: e-mails and cards redacted


def redacted(text: str) -> tuple[str, dict[str, int]]:
    verdict = check_input(PII_ONLY, [{"role": "user", "content": text}])
    assert verdict.verdict == "modify" and verdict.document is not None
    return verdict.document[0]["content"], {f.rule: f.count for f in verdict.findings}  # type: ignore[return-value]


def test_emails_are_redacted_and_counted() -> None:
    assert redacted("to a@b.io and c.d@e.org") == ("to [EMAIL] and [EMAIL]", {"pii.email": 2})


def test_only_luhn_valid_cards_are_redacted_and_counted() -> None:
    text, counts = redacted("4111 1111 1111 1111 / 4111 1111 1111 1112 / 378282246310005")
    assert (text, counts) == ("[CARD] / 4111 1111 1111 1112 / [CARD]", {"pii.card": 2})


def test_text_without_matches_is_allowed_unchanged() -> None:
    verdict = check_input(PII_ONLY, [{"role": "user", "content": "nothing here 12345"}])
    assert verdict.verdict == "allow" and verdict.document is None and verdict.findings == []


def test_replace_spans_takes_the_replacement_literally() -> None:
    assert replace_spans("abcdef", [Span(1, 2), Span(4, 6)], r"\1") == r"a\1cd\1"
