"""The one check of a pass-through path and query (shared/native.py)."""
from __future__ import annotations

import pytest

from shared.errors import InvalidRequest
from shared.native import forwarded_response_headers, model_in_path, native_path, native_query


@pytest.mark.parametrize("path", [
    "/v1/chat/completions", "/v1beta/models/gemini-2.5-flash:generateContent", "/openai/deployments/gpt-4o/chat",
    "/v1/files/file-abc%20def", "/v1/models/ft%3Agpt-4o",
])
def test_plain_paths_pass_as_written(path: str) -> None:
    assert native_path(path) == path


@pytest.mark.parametrize("path", [
    "/v1/../admin", "/..", "/v1/./x", "/v1//x", "//evil.example/v1", "/http://evil.example/v1",
    "/v1/%2e%2e/x", "/v1/%2E%2e", "/v1%2fx", "/v1%2Fx", "/v1/%5c..", "/v1/%252e", "/v1/a%00", "/v1/a%0d%0a",
    "/v1/a%zz", "/v1/a%4", "/v1\\x", "/v1/a b", "/v1/a\tb", "/v1/caf\u00e9", "v1/no-slash",
])
def test_tricks_are_refused(path: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        native_path(path)
    assert refused.value.status == 400 and refused.value.code == "invalid_path"


def test_empty_path_is_the_root() -> None:
    assert native_path("") == "/" and native_path("/") == "/"


def test_query_loses_credential_parameters_only() -> None:
    assert native_query("alt=sse&key=jg-secret&limit=2&API_KEY=x") == "alt=sse&limit=2"
    assert native_query("") == ""
    with pytest.raises(InvalidRequest):
        native_query("a=%0a")


def test_model_in_path() -> None:
    assert model_in_path("/v1beta/models/gemini-2.5-flash:streamGenerateContent") == "gemini-2.5-flash"
    assert model_in_path("/openai/deployments/gpt-4o/chat/completions") == "gpt-4o"
    assert model_in_path("/v1/messages") is None


def test_response_headers_allowlisted() -> None:
    kept = forwarded_response_headers({"content-type": "application/json", "location": "http://elsewhere/",
                                       "set-cookie": "a=b", "x-ratelimit-remaining-requests": "9",
                                       "anthropic-ratelimit-tokens-limit": "1", "x-request-id": "up"})
    assert kept == {"content-type": "application/json", "x-ratelimit-remaining-requests": "9",
                    "anthropic-ratelimit-tokens-limit": "1"}
