"""The `gemini` adapter on AI Studio's wire, against a real fake Gemini server: what it
sends for OpenAI chat bodies and how Gemini's answers come back in OpenAI's shapes."""
from __future__ import annotations

import base64
import json

import orjson
import pytest

from services.router.providers.base import ChatCall
from services.router.providers.gemini import GeminiProvider, payloads
from shared.errors import GatewayError
from tests.fakes.gemini_upstream import FakeGemini
from tests.services.router.providers.gemini.conftest import KEY

MESSAGES = [{"role": "system", "content": "Answer in one line."}, {"role": "user", "content": "Hello there, Gemini."}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city", "unit"]}}}


async def test_plain_chat_sends_generate_content_with_the_key_header(studio: GeminiProvider, gemini: FakeGemini) -> None:
    done = await studio.chat(ChatCall({"model": "gateway-name", "messages": MESSAGES, "temperature": 0.2, "top_p": 0.9,
                                       "max_tokens": 50, "stop": "END", "n": 2}, "gemini-2.5-flash"))

    (sent,) = gemini.model_requests()
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY and "authorization" not in sent.headers
    assert sent.headers["x-team"] == "router-tests"
    assert sent.json == {
        "contents": [{"role": "user", "parts": [{"text": "Hello there, Gemini."}]}],
        "systemInstruction": {"parts": [{"text": "Answer in one line."}]},
        "generationConfig": {"temperature": 0.2, "topP": 0.9, "candidateCount": 2, "maxOutputTokens": 50,
                             "stopSequences": ["END"]},
    }
    body = orjson.loads(done.raw)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "gemini-2.5-flash"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["choices"][1]["message"] == {"role": "assistant", "content": payloads.REPLY_TEXT, "refusal": None,
                                             "annotations": []}
    assert body["choices"][0]["finish_reason"] == "stop"
    prompt = 7  # the words of the system and user messages
    assert done.usage is not None and (done.usage.prompt_tokens, done.usage.completion_tokens) == (
        prompt, 2 * payloads.CANDIDATES_TOKENS)
    assert body["usage"]["total_tokens"] == prompt + 2 * payloads.CANDIDATES_TOKENS


async def test_roles_turns_and_tool_results_become_contents(studio: GeminiProvider, gemini: FakeGemini) -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be exact."}]},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        {"role": "user", "content": "And in words?"},
    ]
    await studio.chat(ChatCall({"messages": messages, "tools": [WEATHER], "tool_choice": "none"}, "gemini-2.5-flash"))

    sent = gemini.model_requests()[-1].json
    assert sent["systemInstruction"] == {"parts": [{"text": "Be exact."}]}
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                                   {"text": "And in words?"}]},
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert sent["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "The weather in a city",
        "parameters": {"type": "OBJECT", "required": ["city", "unit"],
                       "properties": {"city": {"type": "STRING"}, "unit": {"type": "STRING", "enum": ["c", "f"]}}}}]}]


async def test_function_call_answer_becomes_tool_calls(studio: GeminiProvider, gemini: FakeGemini) -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    done = await studio.chat(ChatCall({"messages": MESSAGES, "tools": [WEATHER], "tool_choice": choice}, "gemini-2.5-pro"))

    assert gemini.model_requests()[-1].json["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    choice_out = orjson.loads(done.raw)["choices"][0]
    assert choice_out["finish_reason"] == "tool_calls"
    assert choice_out["message"]["content"] is None
    (call,) = choice_out["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "c"}


async def test_required_tool_choice_is_mode_any(studio: GeminiProvider, gemini: FakeGemini) -> None:
    await studio.chat(ChatCall({"messages": MESSAGES, "tools": [WEATHER], "tool_choice": "required"}, "gemini-2.5-pro"))
    assert gemini.model_requests()[-1].json["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


async def test_images_from_data_urls_go_inline(studio: GeminiProvider, gemini: FakeGemini) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(24)
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]
    done = await studio.chat(ChatCall({"messages": [{"role": "user", "content": content}]}, "gemini-2.5-flash"))

    parts = gemini.model_requests()[-1].json["contents"][0]["parts"]
    assert parts == [{"text": "What is this?"},
                     {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}]
    assert orjson.loads(done.raw)["choices"][0]["message"]["content"] == f"I see 1 inline file(s): image/png of {len(png)} bytes."


async def test_json_schema_response_format_becomes_response_schema(studio: GeminiProvider, gemini: FakeGemini) -> None:
    schema = {"type": "object", "properties": {"name": {"type": ["string", "null"]}, "tags": {
        "type": "array", "items": {"$ref": "#/$defs/tag"}}}, "required": ["name"], "additionalProperties": False,
        "$defs": {"tag": {"type": "string", "maxLength": 12}}}
    body = {"messages": MESSAGES, "response_format": {"type": "json_schema",
                                                      "json_schema": {"name": "card", "schema": schema, "strict": True}}}
    await studio.chat(ChatCall(body, "gemini-2.5-flash"))

    config = gemini.model_requests()[-1].json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {"type": "OBJECT", "required": ["name"], "properties": {
        "name": {"type": "STRING", "nullable": True},
        "tags": {"type": "ARRAY", "items": {"type": "STRING", "maxLength": 12}}}}


async def test_prompt_blocked_is_a_content_filter_answer(studio: GeminiProvider) -> None:
    done = await studio.chat(ChatCall({"messages": MESSAGES}, "blocked"))
    (choice,) = orjson.loads(done.raw)["choices"]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] is None
    assert done.usage is not None and done.usage.prompt_tokens > 0 and done.usage.completion_tokens == 0


async def test_candidate_stopped_for_safety_is_content_filter(studio: GeminiProvider) -> None:
    done = await studio.chat(ChatCall({"messages": MESSAGES}, "safety"))
    (choice,) = orjson.loads(done.raw)["choices"]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] is None


async def test_thinking_and_cached_tokens_reach_usage(studio: GeminiProvider) -> None:
    done = await studio.chat(ChatCall({"messages": MESSAGES}, "thinking"))
    body = orjson.loads(done.raw)
    assert body["choices"][0]["message"]["content"] == payloads.REPLY_TEXT  # the thought part is not the answer
    usage = body["usage"]
    assert usage["completion_tokens"] == payloads.CANDIDATES_TOKENS + payloads.THOUGHTS_TOKENS
    assert usage["completion_tokens_details"] == {"reasoning_tokens": payloads.THOUGHTS_TOKENS}
    assert usage["prompt_tokens_details"] == {"cached_tokens": payloads.CACHED_TOKENS}
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_deployment_model_may_carry_the_models_prefix(studio: GeminiProvider, gemini: FakeGemini) -> None:
    await studio.chat(ChatCall({"messages": MESSAGES}, "models/gemini-2.0-flash"))
    assert gemini.model_requests()[-1].path == "/v1beta/models/gemini-2.0-flash:generateContent"


async def test_thought_signature_rides_in_the_tool_call_id_and_goes_back(studio: GeminiProvider,
                                                                        gemini: FakeGemini) -> None:
    question = [{"role": "user", "content": "Weather in Paris?"}]
    first = orjson.loads((await studio.chat(ChatCall({"messages": question, "tools": [WEATHER]}, "thinking"))).raw)
    (call,) = first["choices"][0]["message"]["tool_calls"]
    issued = gemini.model_requests()[-1]
    assert issued.json["contents"] == [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]

    history = [*question, first["choices"][0]["message"],
               {"role": "tool", "tool_call_id": call["id"], "content": "21 degrees"}]
    done = await studio.chat(ChatCall({"messages": history, "tools": [WEATHER]}, "thinking"))
    assert orjson.loads(done.raw)["choices"][0]["message"]["content"] == payloads.REPLY_TEXT
    model_turn = gemini.model_requests()[-1].json["contents"][1]
    (part,) = model_turn["parts"]
    assert part["functionCall"] == {"name": "get_weather", "args": {"city": "Paris", "unit": "c"}}
    assert call["id"].endswith("~ts~" + part["thoughtSignature"]) and len(part["thoughtSignature"]) == 64


async def test_unsigned_function_call_history_is_refused_by_thinking_models(studio: GeminiProvider) -> None:
    history = [{"role": "user", "content": "Weather?"},
               {"role": "assistant", "tool_calls": [{"id": "call_plain", "type": "function",
                                                     "function": {"name": "get_weather", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "call_plain", "content": "sunny"}]
    with pytest.raises(GatewayError) as caught:
        await studio.chat(ChatCall({"messages": history}, "thinking"))
    assert caught.value.status == 400 and "thought_signature" in caught.value.message
