"""The one redaction: credentials cut out of everything that leaves a process.

Two things are cut: the exact secrets this process holds (shared/secrets.py, in every
form they may be written in) and the shapes of credentials it does not know (bearer
tokens, `sk-`/`jg-` keys, `api_key=...`, `user:password@` in URLs).

- `redact_secrets(text)`: both, for text the gateway writes itself — error messages (in
  `GatewayError`, so the HTTP body and the error frame carry them redacted), events
  (`redact_event_json`), log lines (`RedactingFilter`, shared/service.py).
- `redact_content(data)`: only the known secrets, for what an upstream answered and the
  client gets as is (answers, stream chunks): a model writing about `sk-` keys is not
  censored, but an upstream echoing the gateway's own key is.

Patterns are only tried when a cheap look for their trigger finds one, and known values
by substring search, so text with no credential costs a few substring tests.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from shared.secrets import KNOWN_SECRETS

MASK = "***"


@dataclass(frozen=True, slots=True)
class _Pattern:
    triggers: tuple[str, ...]  # lower-case; the pattern can only match where one of them is
    regex: re.Pattern[str]

    def sub(self, text: str, lowered: str) -> str:
        if not any(trigger in lowered for trigger in self.triggers):
            return text
        return self.regex.sub(lambda m: m.group(1) + MASK + (m.group(2) or ""), text)


_PATTERNS = (
    _Pattern(("bearer",), re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}()")),
    _Pattern(("jg-",), re.compile(r"\b(jg-)[A-Za-z0-9_-]{8,}()")),
    _Pattern(("sk-",), re.compile(r"\b(sk-)[A-Za-z0-9_-]{8,}()")),
    _Pattern(("api", "authorization"), re.compile(
        r"(?i)((?:api[-_]?key|x-api-key|authorization)[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
        r"[^\s\"',}]{6,}()")),
    _Pattern(("aiza",), re.compile(r"\b(AIza)[A-Za-z0-9_-]{20,}()")),  # Google API keys (Gemini on AI Studio)
    _Pattern(("ya29.",), re.compile(r"\b(ya29\.)[A-Za-z0-9_.-]{8,}()")),  # Google OAuth2 access tokens (Vertex AI)
    # scheme://user:password@host
    _Pattern(("://",), re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"']*:)[^\s@/\"']+(@)")),
)


def redact_secrets(text: str) -> str:
    """`text` with every known secret and every credential-shaped string masked."""
    for form in KNOWN_SECRETS.forms.text:
        if form in text:
            text = text.replace(form, MASK)
    lowered = text.lower()
    for pattern in _PATTERNS:
        text = pattern.sub(text, lowered)  # a mask never makes a trigger: `lowered` stays good enough
    return text


_TRIGGERS = tuple(trigger for pattern in _PATTERNS for trigger in pattern.triggers)


def holds_secret(text: str) -> bool:
    """Whether `redact_secrets` may change `text` (cheap: substring tests only)."""
    for form in KNOWN_SECRETS.forms.text:
        if form in text:
            return True
    lowered = text.lower()
    return any(trigger in lowered for trigger in _TRIGGERS)


def redact_content(data: bytes) -> bytes:
    """Upstream JSON relayed as is, with the known secrets masked (it stays valid JSON)."""
    for form in KNOWN_SECRETS.forms.content:
        if form in data:
            data = data.replace(form, MASK.encode())
    return data


def _redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {redact_secrets(k): _redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(item) for item in value]
    return value


def redact_event_json(data: bytes) -> bytes:
    """A JSON document (an event) with every string in it redacted; unchanged (and not
    parsed) when nothing in it can be a credential."""
    text = data.decode()
    if not holds_secret(text):
        return data
    redacted: bytes = orjson.dumps(_redact_strings(orjson.loads(data)))
    return redacted


class RedactingFilter(logging.Filter):
    """Redacts a log record's message, exception and stack text before any handler formats
    it. Installed on the handlers of the root logger (a filter on a logger would not see
    the records its children propagate)."""

    def __init__(self, redact: Callable[[str], str] = redact_secrets) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True
