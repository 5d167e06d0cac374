"""Scrubbing of credentials from text that may reach logs or error messages."""
from __future__ import annotations

import re

_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\b(jg-)[A-Za-z0-9_-]{8,}"),
    re.compile(r"\b(sk-)[A-Za-z0-9_-]{8,}"),
    re.compile(r"\b(AIza)[A-Za-z0-9_-]{20,}"),  # Google API keys (Gemini on AI Studio)
    re.compile(r"\b(ya29\.)[A-Za-z0-9_.-]{8,}"),  # Google OAuth2 access tokens (Vertex AI)
    re.compile(r"(?i)((?:api[-_]?key|x-api-key|authorization)[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
               r"[^\s\"',}]{6,}"),
)


def redact_secrets(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text
