"""The `openai` adapter on the wire, against a real fake-OpenAI server: what it sends,
and how each upstream failure becomes a GatewayError (the table in providers/openai/errors.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import orjson
import pytest

from services.router.http_client import UpstreamHttp
from services.router.providers.base import ChatCall, EmbeddingsCall
from services.router.providers.openai import OpenAIConfig, OpenAIProvider, payloads
from shared.errors import GatewayError
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.openai_wire import RATE_LIMIT_HEADERS

KEY = "sk-router-adapter-test-key-0123456789"
KEY_ENV = "JETGATE_TEST_ROUTER_UPSTREAM_KEY"
MESSAGES = [{"role": "user", "content": "Hello there, upstream."}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(expected_api_key=KEY, retry_after_s=7) as server:
        yield server


@pytest.fixture
def provider(fake: FakeOpenAI, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch) -> OpenAIProvider:
    monkeypatch.setenv(KEY_ENV, KEY)
    fake.clear()
    config = OpenAIConfig(
        name="up", base_url=fake.base_url, api_key=f"env:{KEY_ENV}", timeout_s=10, headers={"x-team": "router-tests"}
    )
    return OpenAIProvider(config, http)


async def test_sends_the_key_from_the_env_reference_as_bearer(provider, fake: FakeOpenAI) -> None:
    done = await provider.chat(ChatCall({"model": "gateway-name", "messages": MESSAGES}, "gpt-4o"))
    assert orjson.loads(done.raw)["model"] == "gpt-4o"
    (sent,) = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.bearer == KEY
    assert sent.headers["x-team"] == "router-tests"
    assert sent.json["model"] == "gpt-4o" and sent.json["messages"] == MESSAGES


async def test_streams_always_ask_for_usage(provider, fake: FakeOpenAI) -> None:
    bodies = [
        {"messages": MESSAGES},
        {"messages": MESSAGES, "stream_options": {"include_usage": False, "include_obfuscation": False}},
    ]
    for body in bodies:
        chunks = [chunk async for chunk in provider.chat_stream(ChatCall(body, "gpt-4o-mini"))]
        assert chunks[-1].usage_only
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == payloads.COMPLETION_TOKENS
        # the client did not ask: its chunks carry no `"usage": null` the upstream added for us
        assert all(b'"usage"' not in chunk.raw for chunk in chunks[:-1])
    first, second = (r.json for r in fake.requests)
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert second["stream_options"] == {"include_usage": True, "include_obfuscation": False}


async def test_a_client_that_asked_for_usage_gets_the_upstreams_null_usage_as_openai_sends_it(provider) -> None:
    body = {"messages": MESSAGES, "stream_options": {"include_usage": True}}
    chunks = [chunk async for chunk in provider.chat_stream(ChatCall(body, "gpt-4o-mini"))]
    assert all(orjson.loads(chunk.raw)["usage"] is None for chunk in chunks[:-1])
    assert orjson.loads(chunks[-1].raw)["usage"]["completion_tokens"] == payloads.COMPLETION_TOKENS


async def test_stream_without_upstream_usage_has_no_usage_chunk(provider) -> None:
    chunks = [chunk async for chunk in provider.chat_stream(ChatCall({"messages": MESSAGES}, "stream-no-usage"))]
    assert chunks and all(chunk.usage is None and not chunk.usage_only for chunk in chunks)
    assert orjson.loads(chunks[-1].raw)["choices"][0]["finish_reason"] == "stop"
    assert "".join(c.text for c in chunks) == payloads.REPLY_TEXT


async def _error(call) -> GatewayError:  # type: ignore[no-untyped-def]
    with pytest.raises(GatewayError) as caught:
        await call
    return caught.value


@pytest.mark.parametrize(
    ("model", "status", "retryable", "code"),
    [
        ("fail-500", 502, True, "upstream_error"),
        ("fail-503", 502, True, "upstream_error"),
        ("fail-429", 429, True, "rate_limit_exceeded"),
        ("fail-401", 502, True, "upstream_auth_failed"),
        ("fail-404", 502, True, "upstream_model_not_found"),  # a misconfigured deployment: fail over
        ("fail-400", 400, False, None),
    ],
)
async def test_upstream_status_maps_to_provider_error(
    provider, model: str, status: int, retryable: bool, code: str | None
) -> None:
    for call in (
        provider.chat(ChatCall({"messages": MESSAGES}, model)),
        provider.embeddings(EmbeddingsCall({"input": "x"}, model)),
    ):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (status, retryable, code)


async def test_stream_failure_raises_before_the_first_chunk(provider) -> None:
    error = await _error(anext(provider.chat_stream(ChatCall({"messages": MESSAGES}, "fail-500"))))
    assert (error.status, error.retryable) == (502, True)


async def test_rate_limit_keeps_retry_after(provider) -> None:
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "fail-429")))
    assert error.retry_after == "7"
    assert error.type == "rate_limit_exceeded"


async def test_bad_request_keeps_the_upstream_message_and_param(provider) -> None:
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "fail-400")))
    assert error.message == "Invalid value for 'messages': fake upstream refused."
    assert error.param == "messages" and error.type == "invalid_request_error" and error.code is None


async def test_refused_credentials_never_show_the_key(
    fake: FakeOpenAI, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-key-that-must-stay-private-42"
    monkeypatch.setenv(KEY_ENV, wrong)
    provider = OpenAIProvider(OpenAIConfig(name="up", base_url=fake.base_url, api_key=f"env:{KEY_ENV}"), http)
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "gpt-4o")))
    assert (error.status, error.retryable, error.code) == (502, True, "upstream_auth_failed")
    for text in (error.message, str(error)):
        assert wrong not in text and wrong[-4:] not in text and KEY not in text


async def test_without_a_key_no_authorization_is_sent(
    fake: FakeOpenAI, http: UpstreamHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    fake.clear()
    provider = OpenAIProvider(OpenAIConfig(name="up", base_url=fake.base_url, api_key=f"env:{KEY_ENV}"), http)
    error = await _error(provider.chat(ChatCall({"messages": MESSAGES}, "gpt-4o")))
    assert error.status == 502
    assert "authorization" not in fake.requests[-1].headers


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_502_retryable(http: UpstreamHttp) -> None:
    config = OpenAIConfig(name="down", base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    provider = OpenAIProvider(config, http)
    for call in (
        provider.chat(ChatCall({"messages": MESSAGES}, "gpt-4o")),
        anext(provider.chat_stream(ChatCall({"messages": MESSAGES}, "gpt-4o"))),
    ):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (502, True, "upstream_unreachable")
        assert "down" in error.message


async def test_hanging_upstream_times_out_as_504(provider, fake: FakeOpenAI, http: UpstreamHttp) -> None:
    config = OpenAIConfig(name="slow", base_url=fake.base_url, api_key=f"env:{KEY_ENV}", timeout_s=0.3)
    slow = OpenAIProvider(config, http)
    for call in (
        slow.chat(ChatCall({"messages": MESSAGES}, "hang")),
        anext(slow.chat_stream(ChatCall({"messages": MESSAGES}, "hang"))),
    ):
        error = await _error(call)
        assert (error.status, error.retryable, error.code) == (504, True, "upstream_timeout")


async def test_the_upstreams_rate_limit_and_processing_headers_come_with_the_answer(provider) -> None:
    done = await provider.chat(ChatCall({"messages": MESSAGES}, "gpt-4o-mini"))
    assert done.headers["x-ratelimit-remaining-requests"] == RATE_LIMIT_HEADERS["x-ratelimit-remaining-requests"]
    assert done.headers["openai-processing-ms"] == "1"
    assert "x-request-id" not in done.headers and "openai-version" not in done.headers  # the gateway's own answer
    chunks = [chunk async for chunk in provider.chat_stream(ChatCall({"messages": MESSAGES}, "gpt-4o-mini"))]
    assert chunks[0].headers is not None and chunks[0].headers["x-ratelimit-limit-tokens"] == "30000000"
    assert all(chunk.headers is None for chunk in chunks[1:])  # once, with the first chunk
