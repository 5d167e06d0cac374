"""The fake Anthropic upstream, checked with the official `anthropic` SDK: if the SDK parses
its answers and stream events and raises the right errors, the fake speaks the API the
adapter must speak."""
from __future__ import annotations

import base64
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from services.router.providers.anthropic import payloads
from tests.fakes.anthropic_upstream import FakeAnthropic

KEY = "sk-ant-test-upstream-key-0123456789"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                            "required": ["city", "unit"]}}
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n fake pixel").decode()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(expected_api_key=KEY, retry_after_s=3) as server:
        yield server


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def test_message(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    done = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, system="Be brief.", messages=MESSAGES)
    assert done.id.startswith("msg_01") and done.type == "message" and done.role == "assistant"
    assert done.model == "claude-sonnet-4-5" and done.stop_reason == "end_turn" and done.stop_sequence is None
    assert [b.type for b in done.content] == ["text"] and done.content[0].text == payloads.REPLY_TEXT  # type: ignore[union-attr]
    assert done.usage.input_tokens == 2 + 6  # "Be brief." and the question, in words
    assert done.usage.output_tokens == payloads.COMPLETION_TOKENS
    assert done.usage.cache_read_input_tokens == 0 and done.usage.cache_creation_input_tokens == 0
    seen = fake.requests[-1]
    assert seen.path == "/v1/messages" and seen.api_key == KEY and seen.headers["anthropic-version"]


def test_max_tokens_and_stop_sequences_cut_the_reply(client: anthropic.Anthropic) -> None:
    short = client.messages.create(model="claude-x", max_tokens=3, messages=MESSAGES)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 3
    assert short.content[0].text == "Hello! This"  # type: ignore[union-attr]
    stopped = client.messages.create(model="claude-x", max_tokens=100, messages=MESSAGES, stop_sequences=[" fake"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == " fake"
    assert stopped.content[0].text == "Hello! This is the"  # type: ignore[union-attr]


def test_prompt_cache_counts(client: anthropic.Anthropic) -> None:
    done = client.messages.create(model="cache-hit", max_tokens=100, messages=MESSAGES)
    assert done.usage.cache_read_input_tokens == payloads.CACHE_READ_TOKENS
    assert done.usage.cache_creation_input_tokens == payloads.CACHE_CREATION_TOKENS


def test_stream_event_sequence(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-x", max_tokens=100, messages=MESSAGES) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert final.content[0].text == payloads.REPLY_TEXT  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == payloads.COMPLETION_TOKENS


def test_tool_use_and_tool_result_round_trip(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    first = client.messages.create(model="claude-x", max_tokens=100, messages=MESSAGES, tools=[WEATHER])  # type: ignore[list-item]
    assert first.stop_reason == "tool_use"
    text, call = first.content
    assert text.type == "text" and call.type == "tool_use"
    assert call.name == "get_weather" and call.input == {"city": "Paris", "unit": "c"} and call.id.startswith("toolu_01")
    follow = client.messages.create(model="claude-x", max_tokens=100, tools=[WEATHER], tool_choice={"type": "none"},  # type: ignore[list-item]
                                    messages=[*MESSAGES, {"role": "assistant", "content": first.content},  # type: ignore[list-item]
                                              {"role": "user", "content": [
                                                  {"type": "tool_result", "tool_use_id": call.id, "content": "18 C"}]}])
    assert follow.stop_reason == "end_turn"


def test_streamed_tool_input_arrives_as_json_fragments(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-x", max_tokens=100, messages=MESSAGES, tools=[WEATHER],  # type: ignore[list-item]
                                tool_choice={"type": "tool", "name": "get_weather"}) as stream:
        fragments = [e.delta.partial_json for e in stream if e.type == "content_block_delta"  # type: ignore[union-attr]
                     and e.delta.type == "input_json_delta"]
        final = stream.get_final_message()
    assert len([f for f in fragments if f]) > 1
    assert final.content[1].input == {"city": "Paris", "unit": "c"}  # type: ignore[union-attr]


def test_images_base64_and_url(client: anthropic.Anthropic) -> None:
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
               {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
               {"type": "text", "text": "Describe these"}]
    done = client.messages.create(model="claude-x", max_tokens=100, messages=[{"role": "user", "content": content}])  # type: ignore[list-item, misc]
    assert done.usage.input_tokens == 2
    bad = [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PIXEL}}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-x", max_tokens=100, messages=[{"role": "user", "content": bad}])  # type: ignore[list-item, misc]
    assert "media_type" in caught.value.message


@pytest.mark.parametrize(("model", "error", "kind"), [
    ("fail-400", anthropic.BadRequestError, "invalid_request_error"),
    ("too-long", anthropic.BadRequestError, "invalid_request_error"),
    ("fail-401", anthropic.AuthenticationError, "authentication_error"),
    ("fail-403", anthropic.PermissionDeniedError, "permission_error"),
    ("fail-404", anthropic.NotFoundError, "not_found_error"),
    ("fail-429", anthropic.RateLimitError, "rate_limit_error"),
    ("fail-500", anthropic.InternalServerError, "api_error"),
    ("fail-529", anthropic.OverloadedError, "overloaded_error"),
])
def test_errors(client: anthropic.Anthropic, model: str, error: type[anthropic.APIStatusError], kind: str) -> None:
    with pytest.raises(error) as caught:
        client.messages.create(model=model, max_tokens=10, messages=MESSAGES)
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == kind
    assert body["request_id"].startswith("req_")
    if model in ("fail-429", "fail-529"):
        assert caught.value.response.headers["retry-after"] == "3"


def test_error_event_mid_stream(client: anthropic.Anthropic) -> None:
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client.messages.stream(model="stream-error-mid", max_tokens=100, messages=MESSAGES) as stream:
            texts.extend(stream.text_stream)
    assert "".join(texts) == "".join(payloads.REPLY_PIECES[:3])
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"model": "claude-x", "messages": MESSAGES}, "max_tokens: Field required"),
    ({"model": "claude-x", "max_tokens": 9, "messages": [{"role": "system", "content": "x"}, *MESSAGES]},
     'Unexpected role "system"'),
    ({"model": "claude-x", "max_tokens": 9, "temperature": 1.5, "messages": MESSAGES}, "temperature"),
    ({"model": "claude-x", "max_tokens": 9, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}]}]},
     "unexpected `tool_use_id`"),
    ({"model": "claude-x", "max_tokens": 9, "messages": [
        *MESSAGES, {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
        {"role": "user", "content": "no result"}]},
     "without `tool_result` blocks"),
    ({"model": "claude-x", "max_tokens": 9, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}]},
     "Input tag 'image_url'"),
])
def test_requests_the_api_refuses(fake: FakeAnthropic, body: dict[str, object], fragment: str) -> None:
    reply = httpx.post(f"{fake.base_url}/v1/messages", json=body,
                       headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error" and fragment in reply.json()["error"]["message"]


def test_headers_are_required(fake: FakeAnthropic) -> None:
    body = {"model": "claude-x", "max_tokens": 9, "messages": MESSAGES}
    assert httpx.post(f"{fake.base_url}/v1/messages", json=body, headers={"x-api-key": KEY}).status_code == 400
    unauthorized = httpx.post(f"{fake.base_url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert unauthorized.status_code == 401 and unauthorized.json()["error"]["type"] == "authentication_error"


def test_sse_framing_names_each_event(fake: FakeAnthropic) -> None:
    body = {"model": "claude-x", "max_tokens": 9, "messages": MESSAGES, "stream": True}
    reply = httpx.post(f"{fake.base_url}/v1/messages", json=body,
                       headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = [e for e in reply.text.split("\n\n") if e]
    assert all(e.startswith("event: ") and "\ndata: {" in e for e in events)
    assert events[0].startswith("event: message_start") and events[-1].startswith("event: message_stop")
