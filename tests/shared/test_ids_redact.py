"""UUIDv7 identifiers, and scrubbing credentials out of text bound for logs and errors."""
from __future__ import annotations

import re
import time
import uuid

import pytest

from shared.ids import uuid7
from shared.redact import redact_secrets

UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _ms(value: str) -> int:
    return uuid.UUID(value).int >> 80


def test_uuid7_is_a_version_7_rfc_uuid() -> None:
    for _ in range(1000):
        value = uuid7()
        assert UUID_TEXT.match(value), value
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_uuid7_carries_the_current_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= _ms(value) <= after


def test_uuid7_is_unique_and_time_ordered() -> None:
    values = [uuid7() for _ in range(10_000)]
    assert len(set(values)) == len(values)
    stamps = [_ms(v) for v in values]
    assert stamps == sorted(stamps)  # never goes back in time
    earlier = uuid7()
    time.sleep(0.002)
    assert uuid7() > earlier  # a later millisecond sorts later, as text too


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer sk-proj-abcDEF1234567890xyz", "abcDEF1234567890xyz"),
    ("authorization=bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ("sent bearer  tok_ABCDEFGHIJKLMNOP to upstream", "ABCDEFGHIJKLMNOP"),
    ("key jg-Q2hhbmdlTWVQbGVhc2VfMTIzNDU2Nzg5MA was revoked", "Q2hhbmdlTWVQbGVhc2VfMTIzNDU2Nzg5MA"),
    ("Incorrect API key provided: sk-ant-api03-AbCdEfGhIjKlMn", "AbCdEfGhIjKlMn"),
    ('{"api_key": "plain-secret-value"}', "plain-secret-value"),
    ("x-api-key=abcdef123456", "abcdef123456"),
    ("API key AIzaSyD-abcdefghijklmnopqrstuvwxyz12345 not valid", "SyD-abcdefghijklmnopqrstuvwxyz12345"),
    ("token ya29.a0AfB_byC1234567890abcdef expired", "a0AfB_byC1234567890abcdef"),
    ("x-goog-api-key: some-google-key-value", "some-google-key-value"),
])
def test_redact_removes_credentials(text: str, secret: str) -> None:
    scrubbed = redact_secrets(text)
    assert secret not in scrubbed
    assert "***" in scrubbed


def test_redact_keeps_what_shows_which_kind_of_key() -> None:
    assert redact_secrets("key jg-abcdefghijkl") == "key jg-***"
    assert redact_secrets("use sk-abcdefghijkl now") == "use sk-*** now"
    assert redact_secrets("Bearer abcdefghijkl") == "Bearer ***"


@pytest.mark.parametrize("text", [
    "The server had an error while processing your request.",
    "ask-questions-freely and task-runner-v2",  # `sk-` inside a word is not a key
    "short ids: sk-abc, jg-12, Bearer xyz",
    "model gpt-4o-mini answered in 120 ms",
])
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact_secrets(text) == text


def test_redact_basic_authorization_credentials() -> None:
    scrubbed = redact_secrets("Authorization: Basic dXNlcjpzM2NyM3QtcGFzc3dvcmQ=")
    assert "dXNlcjpzM2NyM3QtcGFzc3dvcmQ=" not in scrubbed
