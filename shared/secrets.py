"""Secret references, and the registry of every secret value this process holds.

Config names where a credential lives (`env:NAME`, `file:/path`), never the credential.
Every secret the process comes to hold is remembered in `KNOWN_SECRETS` as it is
resolved: provider keys by `resolve_secret`, the master key and the credentials inside the
server URLs by `remember_settings` (called once at startup by each service). Redaction
(shared/redact.py) cuts these exact values out of everything that leaves the process, in
each form they may be written in: as is, URL-encoded, JSON-escaped, base64.

The registry starts empty: nothing is read at import.
"""
from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, quote_plus, unquote, urlsplit

import orjson
from pydantic import AfterValidator, BaseModel, SecretStr

_SCHEMES = ("env:", "file:")

# Shorter values are not remembered: cutting them out of text would hit ordinary words.
MIN_SECRET_CHARS = 8
# Upstream content (answers, stream chunks) is cut only on forms at least this long, so a
# short password can never damage a model's output (a digit run inside a float, say).
MIN_CONTENT_CHARS = 16
# Characters that JSON writes escaped: a form holding one is never cut out of raw JSON.
_JSON_SPECIAL = frozenset('"\\') | frozenset(chr(c) for c in range(0x20))


def _check_reference(value: str) -> str:
    if not value.startswith(_SCHEMES):
        raise ValueError("secrets are given by reference: 'env:NAME' or 'file:/path', not inline")
    return value


SecretRef = Annotated[str, AfterValidator(_check_reference)]


@dataclass(frozen=True, slots=True)
class SecretForms:
    """The written forms of every known secret, longest first (so a form holding another
    is cut first)."""

    text: tuple[str, ...] = ()  # for text the gateway writes: errors, events, logs
    # for upstream JSON relayed as is: the plain forms, long enough and safe to cut anywhere
    content: tuple[bytes, ...] = ()


def written_forms(value: str) -> tuple[set[str], set[str]]:
    """The ways a secret may be written: as is, URL-encoded and JSON-escaped; and in base64."""
    raw = value.encode()
    plain = {value, quote(value, safe=""), quote_plus(value), orjson.dumps(value).decode()[1:-1]}
    encoded = {form.decode().rstrip("=") for form in (base64.b64encode(raw), base64.urlsafe_b64encode(raw))}
    return ({form for form in plain if len(form) >= MIN_SECRET_CHARS},
            {form for form in encoded if len(form) >= MIN_SECRET_CHARS})


class KnownSecrets:
    """The process-wide set of secret values, and their forms for redaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self.forms = SecretForms()

    def add(self, value: str | SecretStr | None) -> None:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value or len(value) < MIN_SECRET_CHARS:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            self._rebuild()

    def __contains__(self, value: str) -> bool:
        return value in self._values

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._rebuild()

    def _rebuild(self) -> None:
        text: set[str] = set()
        content: set[bytes] = set()
        for value in self._values:
            plain, encoded = written_forms(value)
            text |= plain | encoded
            content |= {form.encode() for form in plain
                        if len(form) >= MIN_CONTENT_CHARS and not _JSON_SPECIAL.intersection(form)}
        by_length = sorted(text, key=len, reverse=True)
        self.forms = SecretForms(tuple(by_length), tuple(sorted(content, key=len, reverse=True)))


KNOWN_SECRETS = KnownSecrets()


def resolve_secret(ref: str | None) -> SecretStr | None:
    """The secret a reference points at (remembered for redaction); None when the
    reference or its target is empty."""
    if not ref:
        return None
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:], "")
    else:
        path = Path(ref[5:])
        value = path.read_text().strip() if path.exists() else ""
    if not value:
        return None
    KNOWN_SECRETS.add(value)
    return SecretStr(value)


def url_credentials(url: str) -> list[str]:
    """The secrets written in a server URL (or a comma-separated list of them): the
    password and `user:password` (which Basic auth writes in base64); a user without a
    password is a token (NATS writes its token so)."""
    found: list[str] = []
    for part in url.split(","):
        try:
            parsed = urlsplit(part.strip())
            user, password = parsed.username, parsed.password
        except ValueError:
            continue
        if password:
            found += [password, unquote(password), f"{unquote(user or '')}:{unquote(password)}"]
        elif user and "@" in parsed.netloc:
            found += [user, unquote(user)]
    return found


def remember_settings(settings: BaseModel) -> None:
    """Remember every secret in the settings: each `SecretStr`, and the credentials of
    every URL (nested groups included)."""
    for _, value in settings:
        if isinstance(value, SecretStr):
            KNOWN_SECRETS.add(value)
        elif isinstance(value, BaseModel):
            remember_settings(value)
        elif isinstance(value, str) and "://" in value:
            for credential in url_credentials(value):
                KNOWN_SECRETS.add(credential)
