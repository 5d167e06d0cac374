"""The translations themselves, as plain functions: OpenAI request → Gemini request, JSON
Schema → Gemini Schema, and Gemini stream events → OpenAI chunks (several candidates,
a stream cut before its finish)."""
from __future__ import annotations

import orjson
import pytest

from services.router.providers.gemini import payloads
from services.router.providers.gemini.request import generate_content_request
from services.router.providers.gemini.schema import gemini_schema
from services.router.providers.gemini.stream import StreamTranslator
from shared.errors import InvalidRequest


def test_parts_of_every_kind() -> None:
    content = [
        {"type": "text", "text": "Look:"},
        {"type": "image_url", "image_url": {"url": "gs://bucket/cat.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photo.jpeg?size=large"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
    ]
    request = generate_content_request({"messages": [{"role": "user", "content": content}]})
    assert request["contents"][0]["parts"] == [
        {"text": "Look:"},
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo.jpeg?size=large"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


def test_system_messages_gather_and_turns_of_one_role_merge() -> None:
    request = generate_content_request({"messages": [
        {"role": "system", "content": "One."}, {"role": "user", "content": "a"}, {"role": "user", "content": "b"},
        {"role": "developer", "content": "Two."},
        {"role": "assistant", "content": "Sure.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "plain text result"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "[1, 2]"}]},
        {"role": "function", "name": "legacy", "content": '{"ok": true}'},
    ]})
    assert request["systemInstruction"] == {"parts": [{"text": "One."}, {"text": "Two."}]}
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "Sure."}, {"functionCall": {"name": "f", "args": {}}},
                                    {"functionCall": {"name": "g", "args": {"x": 1}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "f", "response": {"output": "plain text result"}}},
            {"functionResponse": {"name": "g", "response": {"output": "[1, 2]"}}},  # not an object: wrapped
            {"functionResponse": {"name": "legacy", "response": {"ok": True}}}]},
    ]


def test_generation_config_fields() -> None:
    request = generate_content_request({
        "messages": [{"role": "user", "content": "x"}], "max_tokens": 10, "max_completion_tokens": 20,
        "stop": ["a", "b"], "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25,
        "response_format": {"type": "json_object"}, "tools": [{"type": "function", "function": {"name": "noargs"}}]})
    assert request["generationConfig"] == {"seed": 7, "presencePenalty": 0.5, "frequencyPenalty": 0.25,
                                           "maxOutputTokens": 20, "stopSequences": ["a", "b"],
                                           "responseMimeType": "application/json"}
    assert request["tools"] == [{"functionDeclarations": [{"name": "noargs"}]}]  # no empty OBJECT parameters
    assert "toolConfig" not in request


@pytest.mark.parametrize("body", [
    {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}]}]},
    {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "grammar"}},
    {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]},
    {"messages": []},
])
def test_what_cannot_be_carried_is_invalid(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        generate_content_request(body)


def test_schema_conversion() -> None:
    schema = {"type": "object", "$schema": "https://json-schema.org/draft/2020-12/schema", "properties": {
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "kind": {"const": "card"},
        "maybe": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "node": {"$ref": "#/definitions/node"}},
        "definitions": {"node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/node"}}}}}
    out = gemini_schema(schema)
    props = out["properties"]
    assert out["type"] == "OBJECT" and "$schema" not in out
    assert props["level"] == {"type": "STRING", "enum": ["1", "2", "3"]}
    assert props["kind"] == {"type": "STRING", "enum": ["card"]}
    assert props["maybe"] == {"nullable": True, "type": "NUMBER", "minimum": 0}
    assert props["either"] == {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]}
    depth, node = 0, props["node"]
    while "properties" in node:  # a recursive $ref is cut, not followed forever
        node, depth = node["properties"]["child"], depth + 1
    assert 5 < depth < 40


def _candidate_event(index: int, text: str, finish: str | None = None) -> dict[str, object]:
    return payloads.response([payloads.candidate([{"text": text}], finish, index)],
                             payloads.usage_metadata(3, 2), "gemini-2.5-flash", "rid")


def test_stream_with_two_candidates_and_no_finish_from_the_upstream() -> None:
    translator = StreamTranslator("gemini-2.5-flash")
    chunks = [*translator.feed(_candidate_event(0, "A")), *translator.feed(_candidate_event(1, "B", "MAX_TOKENS")),
              *translator.feed(_candidate_event(0, "a")), *translator.close()]
    parsed = [orjson.loads(c.raw) for c in chunks]
    assert {p["id"] for p in parsed} == {"chatcmpl-rid"}
    steps = [(p["choices"][0]["index"], p["choices"][0]["delta"], p["choices"][0]["finish_reason"])
             for p in parsed if p["choices"]]
    assert steps == [
        (0, {"role": "assistant", "content": ""}, None), (0, {"content": "A"}, None),
        (1, {"role": "assistant", "content": ""}, None), (1, {"content": "B"}, None), (1, {}, "length"),
        (0, {"content": "a"}, None),
        (0, {}, "stop"),  # the upstream closed without one: finished at close
    ]
    assert chunks[-1].usage_only and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 5
