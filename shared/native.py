"""Pass-through calls (`/p/{provider}/...`): what of the client's request travels to the
router (`NativeRequest`, in the call's envelope), the one check of its path and query
(made by the ingress, and again by the router before it builds the URL), and which
headers cross in each direction.

The path is checked as the client sent it, still percent-encoded: only plain segments,
never `.` or `..`, never an empty segment (`//`, so never an absolute URL either), never
an encoded `/`, `.`, `\\`, `%` or control character, never a raw control character or
byte outside printable ASCII. Anything else is a 400: the router appends the path to
the provider's configured base URL, and must never reach another host or path above it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, Field

from shared.errors import InvalidRequest

# headers of the client's request that reach the provider (credentials never do: the
# router sends the provider's own)
FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "anthropic-version", "anthropic-beta", "openai-beta")
# headers of the provider's response that reach the client (never `location`: redirects are
# not followed, by the router or by the client; nor `set-cookie`, nor the upstream's
# `x-request-id`, which would shadow the gateway's)
FORWARDED_RESPONSE_HEADERS = ("content-type", "content-encoding", "content-disposition", "retry-after",
                              "request-id", "openai-processing-ms", "openai-version")
FORWARDED_RESPONSE_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
# query parameters that are credentials somewhere (Gemini's `?key=`): dropped, never forwarded
DROPPED_QUERY_PARAMS = frozenset({"key", "api-key", "api_key"})

_ESCAPE = re.compile(r"%(..)?")
_REFUSED_ESCAPES = frozenset({0x2F, 0x2E, 0x5C, 0x25})  # / . \ %
# where a native path names its model: Gemini's `models/{model}:method`, Azure's `deployments/{name}/`
_PATH_MODEL = (re.compile(r"/models/([^/:]+)"), re.compile(r"/deployments/([^/]+)/"))


class NativeRequest(BaseModel):
    """The client's request as a pass-through call carries it to the router (its body is
    the call's body, as sent)."""

    method: str
    path: str  # checked by `native_path`, still percent-encoded, beginning with `/`
    query: str = ""  # checked by `native_query`, without the `?`
    headers: dict[str, str] = Field(default_factory=dict)  # FORWARDED_REQUEST_HEADERS the client sent


def _refuse(what: str) -> InvalidRequest:
    return InvalidRequest(f"The pass-through path is refused: {what}.", param="path", code="invalid_path")


def _check_characters(text: str, what: str) -> None:
    if any(not (0x21 <= ord(c) <= 0x7E) or c == "\\" for c in text):
        raise _refuse(f"the {what} holds a control character, a space, a backslash or a byte outside ASCII")
    for match in _ESCAPE.finditer(text):
        hex_digits = match.group(1)
        if hex_digits is None or not re.fullmatch(r"[0-9A-Fa-f]{2}", hex_digits):
            raise _refuse(f"the {what} holds a malformed percent-escape")
        value = int(hex_digits, 16)
        if value in _REFUSED_ESCAPES or value < 0x20 or value == 0x7F:
            raise _refuse(f"the {what} holds an encoded '/', '.', '\\', '%' or control character")


def native_path(raw: str) -> str:
    """The path to append to the provider's base URL; InvalidRequest (400) when it could
    leave it. `raw` is the path after `/p/{provider}`, as sent (percent-encoded)."""
    if not raw or raw == "/":
        return "/"
    if not raw.startswith("/"):
        raise _refuse("it must begin with '/'")
    _check_characters(raw, "path")
    segments = raw[1:].split("/")
    for segment in segments:
        if segment == "":
            raise _refuse("an empty segment ('//')")
        if segment in (".", ".."):
            raise _refuse("a '.' or '..' segment")
    return raw


def native_query(raw: str) -> str:
    """The query to forward, without the credential parameters of DROPPED_QUERY_PARAMS."""
    if not raw:
        return ""
    _check_characters(raw, "query")
    kept = [part for part in raw.split("&") if part and part.split("=", 1)[0].lower() not in DROPPED_QUERY_PARAMS]
    return "&".join(kept)


def model_in_path(path: str) -> str | None:
    """The model a native path names (Gemini's `models/gemini-2.5-flash:generateContent`,
    Azure's `deployments/gpt-4o/...`), if any."""
    for pattern in _PATH_MODEL:
        found = pattern.search(path)
        if found:
            return found.group(1)
    return None


UPSTREAM_INFO_HEADERS = ("openai-processing-ms",)


def upstream_info_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """What a translated answer (chat, embeddings, ...) passes on of the provider's response
    headers: its rate limits and processing time (names lower-case). The gateway's own
    x-ratelimit-* (its limits on the key's path) replace the provider's where both are set."""
    return {name: value for name, value in headers.items()
            if name in UPSTREAM_INFO_HEADERS or name.startswith(FORWARDED_RESPONSE_PREFIXES)}


def forwarded_response_headers(headers: dict[str, str]) -> dict[str, str]:
    """The provider's response headers the client gets (names lower-case)."""
    return {name: value for name, value in headers.items()
            if name in FORWARDED_RESPONSE_HEADERS or name.startswith(FORWARDED_RESPONSE_PREFIXES)}
