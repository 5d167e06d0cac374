"""The fake OpenAI upstream, checked with the official `openai` SDK: if the SDK parses its
answers and raises the right errors, the fake speaks the API the gateway must speak."""
from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from services.router.providers.openai import payloads
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "sk-test-upstream-key-0123456789"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
                   "required": ["city", "unit"]}}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(expected_api_key=KEY) as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0, timeout=10) as sdk:
        yield sdk


def test_chat_completion(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    done = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert done.id.startswith("chatcmpl-") and done.object == "chat.completion"
    assert done.model == "gpt-4o-mini" and done.service_tier == "default" and done.system_fingerprint
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content == payloads.REPLY_TEXT and choice.message.refusal is None
    assert done.usage is not None
    assert done.usage.prompt_tokens == 8 == payloads.count_prompt_tokens(MESSAGES)
    assert done.usage.completion_tokens == payloads.COMPLETION_TOKENS
    assert done.usage.total_tokens == 8 + payloads.COMPLETION_TOKENS
    assert done.usage.prompt_tokens_details and done.usage.prompt_tokens_details.cached_tokens == 0
    seen = fake.requests[-1]
    assert seen.path == "/v1/chat/completions" and seen.bearer == KEY and seen.json["messages"] == MESSAGES


def test_stream_with_usage(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))  # type: ignore[arg-type]
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == payloads.REPLY_TEXT
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 8 and chunks[-1].usage.completion_tokens == payloads.COMPLETION_TOKENS
    assert all(c.usage is None for c in chunks[:-1])
    assert fake.requests[-1].json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("model", "options"), [("gpt-4o-mini", None), ("stream-no-usage", {"include_usage": True})])
def test_stream_without_usage(client: openai.OpenAI, model: str, options: dict[str, bool] | None) -> None:
    extra = {"stream_options": options} if options else {}
    chunks = list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **extra))  # type: ignore[call-overload]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_sse_framing(fake: FakeOpenAI) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    reply = httpx.post(f"{fake.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = reply.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""] and all(e.startswith("data: {") for e in events[:-2])
    assert "usage" not in json.loads(events[0][6:])


def test_tool_call(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = (choice.message.tool_calls or [])[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}


def test_tool_choice_none_answers_text(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="none")  # type: ignore[arg-type, list-item]
    assert done.choices[0].finish_reason == "stop" and done.choices[0].message.tool_calls is None


def test_a_tool_result_is_answered_in_text(client: openai.OpenAI) -> None:
    asked = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    call = asked.choices[0].message.tool_calls[0]  # type: ignore[index]
    turns = [*MESSAGES, asked.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "21 C"}]
    done = client.chat.completions.create(model="gpt-4o", messages=turns, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    assert done.choices[0].finish_reason == "stop" and done.choices[0].message.content == payloads.REPLY_TEXT


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL],  # type: ignore[arg-type, list-item]
                                        stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    call = (final.choices[0].message.tool_calls or [])[0]
    assert final.choices[0].finish_reason == "tool_calls" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}
    assert final.usage is not None and final.usage.completion_tokens == payloads.COMPLETION_TOKENS


def test_embeddings_float_and_base64(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    inputs = ["one two", "three"]
    floats = client.embeddings.create(model="text-embedding-3-small", input=inputs, encoding_format="float")
    assert floats.object == "list" and floats.model == "text-embedding-3-small"
    assert [d.index for d in floats.data] == [0, 1] and all(d.object == "embedding" for d in floats.data)
    assert floats.data[1].embedding == payloads.embedding_vector(1, payloads.EMBEDDING_DIMENSIONS)
    assert floats.usage.prompt_tokens == 3 == floats.usage.total_tokens
    decoded = client.embeddings.create(model="text-embedding-3-small", input=inputs)  # the SDK asks for base64
    assert fake.requests[-1].json["encoding_format"] == "base64"
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]


def test_embeddings_base64_wire_format(fake: FakeOpenAI) -> None:
    body = {"model": "text-embedding-3-small", "input": "hello", "encoding_format": "base64", "dimensions": 4}
    reply = httpx.post(f"{fake.base_url}/embeddings", json=body, headers={"Authorization": f"Bearer {KEY}"}).json()
    raw = base64.b64decode(reply["data"][0]["embedding"])
    assert list(struct.unpack("<4f", raw)) == payloads.embedding_vector(0, 4)


def test_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
    model = client.models.retrieve("gpt-4o")
    assert model.id == "gpt-4o" and model.object == "model" and model.owned_by
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("no-such-model")
    assert err.value.code == "model_not_found"


@pytest.mark.parametrize(("model", "error", "code"), [
    ("fail-500", openai.InternalServerError, None),
    ("fail-503", openai.InternalServerError, None),
    ("fail-429", openai.RateLimitError, "rate_limit_exceeded"),
    ("fail-401", openai.AuthenticationError, "invalid_api_key"),
    ("fail-400", openai.BadRequestError, None),
    ("fail-404", openai.NotFoundError, "model_not_found"),
])
def test_failures(client: openai.OpenAI, model: str, error: type[openai.APIStatusError], code: str | None) -> None:
    with pytest.raises(error) as err:
        client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    assert err.value.code == code and err.value.type and err.value.message
    body = err.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    if model == "fail-429":
        assert err.value.response.headers["retry-after"] == "1"


def test_wrong_key_is_rejected(fake: FakeOpenAI) -> None:
    with (openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong-key-abcdefgh", max_retries=0) as sdk,
          pytest.raises(openai.AuthenticationError) as err):
        sdk.models.list()
    assert err.value.code == "invalid_api_key" and "sk-wrong-key-abcdefgh" not in err.value.message
    assert fake.requests[-1].bearer == "sk-wrong-key-abcdefgh"


def test_flaky_fails_once() -> None:
    with FakeOpenAI() as flaky, openai.OpenAI(base_url=flaky.base_url, api_key="x", max_retries=0) as sdk:
        with pytest.raises(openai.InternalServerError):
            sdk.chat.completions.create(model="flaky-500", messages=MESSAGES)  # type: ignore[arg-type]
        assert sdk.chat.completions.create(model="flaky-500", messages=MESSAGES).model == "flaky-500"  # type: ignore[arg-type]


def test_slow_stream_notices_disconnect(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    before = fake.streams_aborted
    stream = client.chat.completions.create(model="slow-stream", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    for index, _ in enumerate(stream):
        if index == 3:
            break
    stream.close()
    deadline = time.monotonic() + 5
    while fake.streams_aborted == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.streams_aborted == before + 1


def test_hang_times_out(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).chat.completions.create(model="hang", messages=MESSAGES)  # type: ignore[arg-type]


def test_unknown_path(fake: FakeOpenAI) -> None:
    reply = httpx.post(f"{fake.base_url}/nope", json={}, headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == 404 and reply.json()["error"]["type"] == "invalid_request_error"


def test_echo_models_write_the_callers_key_back(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="echo-key", messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.headers["x-echoed-key"] == KEY and KEY in (raw.parse().choices[0].message.content or "")
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="echo-key-400", messages=MESSAGES)  # type: ignore[arg-type]
    assert KEY in bad.value.message and bad.value.param == f"key {KEY}"
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="echo-key-500", messages=MESSAGES)  # type: ignore[arg-type]
    assert KEY in failed.value.message
    stream = client.chat.completions.create(model="echo-key-stream", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert KEY in "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    with pytest.raises(openai.APIError) as broke:
        for _ in client.chat.completions.create(model="echo-key-stream-error", messages=MESSAGES,  # type: ignore[arg-type]
                                                stream=True):
            pass
    assert KEY in broke.value.message
