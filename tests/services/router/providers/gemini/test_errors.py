"""Gemini's error answers through the adapter, on the wire: each becomes the GatewayError in
the table of providers/gemini/errors.py, and none shows the key."""
from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers.base import ChatCall, EmbeddingsCall
from services.router.providers.gemini import GeminiConfig, GeminiProvider
from shared.errors import GatewayError
from tests.fakes.gemini_upstream import FakeGemini
from tests.services.router.providers.gemini.conftest import KEY_ENV

MESSAGES = [{"role": "user", "content": "Hello"}]


async def _error(call: Coroutine[Any, Any, Any]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await call
    return caught.value


@pytest.mark.parametrize(
    ("model", "status", "retryable", "code"),
    [
        ("fail-400", 400, False, None),
        ("too-long", 400, False, "context_length_exceeded"),
        ("bad-key", 502, True, "upstream_auth_failed"),
        ("fail-401", 502, True, "upstream_auth_failed"),
        ("fail-403", 502, True, "upstream_auth_failed"),
        ("fail-404", 502, True, "upstream_model_not_found"),
        ("fail-429", 429, True, "rate_limit_exceeded"),
        ("fail-500", 502, True, "upstream_error"),
        ("fail-503", 502, True, "upstream_error"),
    ],
)
async def test_upstream_status_maps_to_gateway_error(studio: GeminiProvider, model: str, status: int, retryable: bool,
                                                     code: str | None) -> None:
    for call in (studio.chat(ChatCall({"messages": MESSAGES}, model)),
                 studio.embeddings(EmbeddingsCall({"input": "x"}, model))):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (status, retryable, code)


async def test_rate_limit_takes_retry_after_from_retry_info(studio: GeminiProvider) -> None:
    error = await _error(studio.chat(ChatCall({"messages": MESSAGES}, "fail-429")))
    assert error.retry_after == "13" and error.type == "rate_limit_exceeded"
    assert "provider gem" in error.message and "quota" in error.message


async def test_context_too_long_keeps_gemini_message(studio: GeminiProvider) -> None:
    error = await _error(studio.chat(ChatCall({"messages": MESSAGES}, "too-long")))
    assert error.type == "invalid_request_error" and error.param == "messages"
    assert error.message.startswith("The input token count (1200293) exceeds")


async def test_bad_request_keeps_gemini_message(studio: GeminiProvider) -> None:
    error = await _error(studio.chat(ChatCall({"messages": MESSAGES}, "fail-400")))
    assert error.type == "invalid_request_error" and "Unknown name" in error.message


async def test_refused_key_never_shows_the_key(gemini: FakeGemini, http: UpstreamHttp,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "AIzaSyWrongKeyThatMustStayPrivate000000"
    monkeypatch.setenv(KEY_ENV, wrong)
    provider = GeminiProvider(GeminiConfig(name="gem", base_url=gemini.base_url, api_key=f"env:{KEY_ENV}"), http)
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "gemini-2.5-flash")))
    assert (error.status, error.code, error.retryable) == (502, "upstream_auth_failed", True)
    assert "provider gem" in error.message
    assert wrong not in repr(error.to_wire()) and "AIza" not in error.message


async def test_untranslatable_body_is_a_400_naming_the_field(studio: GeminiProvider, gemini: FakeGemini) -> None:
    bad = [
        ({"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}, "messages[0]"),
        ({"messages": [{"role": "tool", "tool_call_id": "call_x", "content": "42"}]}, "messages[0].tool_call_id"),
        ({"messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": 3},
         "tool_choice"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
    ]
    for body, param in bad:
        error = await _error(studio.chat(ChatCall(body, "gemini-2.5-flash")))
        assert (error.status, error.type, error.param) == (400, "invalid_request_error", param)
    error = await _error(studio.embeddings(EmbeddingsCall({"input": [[1, 2, 3]]}, "gemini-embedding-001")))
    assert (error.status, error.param) == (400, "input")
    assert gemini.model_requests() == []  # refused before anything went upstream
