"""Anthropic Messages requests, validated and translated into the gateway's chat body."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.ingress.anthropic_api.request import CountTokensRequest, MessagesRequest
from services.ingress.anthropic_api.to_openai import chat_body, prompt_body
from services.ingress.body import parse_body
from shared.errors import InvalidRequest

WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _body(**fields: Any) -> dict[str, Any]:
    request = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], **fields}
    return chat_body(MessagesRequest.model_validate(request))


def test_plain_request_with_sampling_stop_and_user() -> None:
    body = _body(system="Be brief.", temperature=0.3, top_p=0.9, top_k=5, stop_sequences=["END"],
                 metadata={"user_id": "u-1"})
    assert body == {"model": "m", "max_tokens": 64, "temperature": 0.3, "top_p": 0.9, "stop": ["END"], "user": "u-1",
                    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}


def test_stream_always_asks_for_usage() -> None:
    body = _body(stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "stream" not in _body(stream=False)


def test_system_blocks_keep_their_cache_breakpoints() -> None:
    body = _body(system=[{"type": "text", "text": "One."},
                         {"type": "text", "text": "Two.", "cache_control": {"type": "ephemeral"}}])
    assert body["messages"][0] == {"role": "system", "content": [
        {"type": "text", "text": "One."}, {"type": "text", "text": "Two.", "cache_control": {"type": "ephemeral"}}]}


def test_images_as_image_url_parts() -> None:
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
               {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]
    body = _body(messages=[{"role": "user", "content": content}])
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]


def test_tool_use_round_trip_becomes_tool_calls_and_tool_messages() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                          {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "text", "text": "18 C"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
            {"type": "text", "text": "Warm?"}]},
    ]
    body = _body(messages=messages, tools=[WEATHER], tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER["input_schema"]}}]
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["messages"][1:] == [
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": [{"type": "text", "text": "18 C"}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                     {"type": "text", "text": "Warm?"}]},
    ]


def test_tool_result_as_string_and_empty() -> None:
    messages = [{"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "t", "input": {}},
                                                  {"type": "tool_use", "id": "b", "name": "t", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "done"},
                                             {"type": "tool_result", "tool_use_id": "b", "is_error": True}]}]
    body = _body(messages=messages)
    assert body["messages"][0]["content"] is None
    assert body["messages"][1:] == [{"role": "tool", "tool_call_id": "a", "content": "done"},
                                    {"role": "tool", "tool_call_id": "b", "content": ""}]


@pytest.mark.parametrize(("choice", "expected"), [
    ({"type": "auto"}, "auto"), ({"type": "any"}, "required"), ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choices(choice: dict[str, Any], expected: Any) -> None:
    body = _body(tools=[WEATHER], tool_choice=choice)
    assert body["tool_choice"] == expected and "parallel_tool_calls" not in body


def test_count_tokens_body_has_no_generation_fields() -> None:
    request = CountTokensRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "Hi"}],
                                                 "tools": [WEATHER]})
    assert set(prompt_body(request)) == {"model", "messages", "tools"}


@pytest.mark.parametrize(("fields", "param"), [
    ({"max_tokens": None}, "max_tokens"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"temperature": 1.5}, "temperature"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].input_schema"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
])
def test_invalid_requests_name_the_field(fields: dict[str, Any], param: str) -> None:
    request = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], **fields}
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(InvalidRequest) as refused:
        parse_body(orjson.dumps(request), MessagesRequest)
    assert refused.value.param == param


def test_a_block_in_the_wrong_turn_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="tool_use"):
        _body(messages=[{"role": "user", "content": [{"type": "tool_use", "id": "x", "name": "t", "input": {}}]}])
    with pytest.raises(InvalidRequest, match="tool_result"):
        _body(messages=[{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}])
