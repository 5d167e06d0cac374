"""OpenAI API payloads, shaped after the API reference (chat.completion, chat.completion.chunk,
embeddings list, models, error bodies). Plain functions returning JSON-ready dicts.

Token counts are deterministic so tests can compute expected usage and cost:
prompt tokens are the whitespace-separated words of the request's text, completion
tokens are a constant per reply (`COMPLETION_TOKENS`, or the chunk count of `slow-stream`).
The model `cache-hit` had a prefix of `CACHED_TOKENS` cached before those words (in
`prompt_tokens`, and `prompt_tokens_details.cached_tokens`); a reasoning model (`o1`,
`o3-mini`, `o4-mini`, ...) reasons `REASONING_TOKENS` before its reply (in
`completion_tokens`, and `completion_tokens_details.reasoning_tokens`), as OpenAI counts them.
A tool call names the first offered function (or the one `tool_choice` names), with
arguments filled from its JSON schema ("Paris" for strings, the first value of an enum).
"""
from __future__ import annotations

import base64
import json
import secrets
import struct
import time
from typing import Any

REPLY_TEXT = "Hello! This is the fake OpenAI upstream answering."
REPLY_PIECES = ["Hello", "!", " This", " is", " the", " fake", " OpenAI", " upstream", " answering", "."]
COMPLETION_TOKENS = len(REPLY_PIECES)  # 10, for every content or tool-call reply
CACHED_TOKENS = 1024  # a `cache-hit` prompt's cached prefix (OpenAI caches prompts from 1,024 tokens)
REASONING_TOKENS = 64  # a reasoning model's thinking before its reply
SYSTEM_FINGERPRINT = "fp_fake0openai"
EMBEDDING_DIMENSIONS = 8
MODEL_CREATED = 1721172741

Json = dict[str, Any]
_SAMPLE_VALUES: dict[str, Any] = {"string": "Paris", "number": 1.5, "integer": 1, "boolean": True,
                                  "array": [], "object": {}}


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_urlsafe(22).replace("-", "x").replace("_", "y")[:29]


def tool_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def count_prompt_tokens(messages: Any) -> int:
    """Words in every message's text content (string content or `text` parts)."""
    if not isinstance(messages, list):
        return 0
    return sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))


def count_input_tokens(inputs: Any) -> int:
    """Embeddings input: words of each string, or the number of token ids."""
    if isinstance(inputs, str):
        return len(inputs.split())
    if isinstance(inputs, list):
        return sum(count_input_tokens(i) if not isinstance(i, int) else 1 for i in inputs)
    return 0


def chosen_tool(body: Json) -> tuple[str, str] | None:
    """(function name, JSON arguments) when the request offers tools and does not forbid them."""
    tools, choice = body.get("tools"), body.get("tool_choice", "auto")
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and (wanted is None or function.get("name") == wanted):
            return str(function.get("name", "")), json.dumps(_sample_arguments(function.get("parameters") or {}))
    return None


def _sample_arguments(schema: Json) -> Json:
    """Arguments that fit a JSON schema's required (or else all) properties."""
    properties: Json = schema.get("properties") or {}
    names = schema.get("required") or list(properties)
    args: Json = {}
    for name in names:
        prop = properties.get(name) or {}
        args[name] = prop["enum"][0] if prop.get("enum") else _SAMPLE_VALUES.get(prop.get("type", ""), "example")
    return args


def usage(prompt_tokens: int, completion_tokens: int, cached: int = 0, reasoning: int = 0) -> Json:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def reasons(model: str) -> bool:
    """An o-series reasoning model (`o1`, `o3-mini`, `o4-mini`)."""
    return len(model) > 1 and model[0] == "o" and model[1].isdigit()


def model_usage(model: str, prompt_words: int, reply_tokens: int) -> Json:
    """The usage of a reply of `reply_tokens` to a prompt of `prompt_words`, as this model
    counts it: a cached prefix before the words (`cache-hit`), reasoning before the reply."""
    cached = CACHED_TOKENS if model == "cache-hit" else 0
    reasoning = REASONING_TOKENS if reasons(model) else 0
    return usage(prompt_words + cached, reply_tokens + reasoning, cached=cached, reasoning=reasoning)


def _completion(cid: str, model: str, message: Json, finish_reason: str, use: Json) -> Json:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": use,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def chat_completion(model: str, prompt_tokens: int, content: str = REPLY_TEXT) -> Json:
    message: Json = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    return _completion(completion_id(), model, message, "stop", model_usage(model, prompt_tokens, COMPLETION_TOKENS))


def tool_call_completion(model: str, prompt_tokens: int, name: str, arguments: str) -> Json:
    call = {"id": tool_call_id(), "type": "function", "function": {"name": name, "arguments": arguments}}
    message = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None, "annotations": []}
    return _completion(completion_id(), model, message, "tool_calls",
                       model_usage(model, prompt_tokens, COMPLETION_TOKENS))


def chunk(cid: str, created: int, model: str, delta: Json, finish_reason: str | None, with_usage: bool) -> Json:
    body: Json = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if with_usage:
        body["usage"] = None  # every chunk but the last carries "usage": null when usage was asked for
    return body


def usage_chunk(cid: str, created: int, model: str, use: Json) -> Json:
    """The extra last chunk sent when `stream_options.include_usage` is true."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [],
        "usage": use,
    }


def content_stream(model: str, pieces: list[str], with_usage: bool) -> tuple[str, int, list[Json]]:
    """Role chunk, one chunk per piece, final chunk with finish_reason (usage chunk not included)."""
    cid, created = completion_id(), int(time.time())
    chunks = [chunk(cid, created, model, {"role": "assistant", "content": "", "refusal": None}, None, with_usage)]
    chunks += [chunk(cid, created, model, {"content": p}, None, with_usage) for p in pieces]
    chunks.append(chunk(cid, created, model, {}, "stop", with_usage))
    return cid, created, chunks


def tool_call_stream(model: str, name: str, arguments: str, with_usage: bool) -> tuple[str, int, list[Json]]:
    """Tool-call deltas: id, type and name first with empty arguments, then argument fragments."""
    cid, created = completion_id(), int(time.time())
    first = {"index": 0, "id": tool_call_id(), "type": "function", "function": {"name": name, "arguments": ""}}
    chunks = [chunk(cid, created, model,
                    {"role": "assistant", "content": None, "tool_calls": [first], "refusal": None}, None, with_usage)]
    step = max(1, len(arguments) // 3)
    for start in range(0, len(arguments), step):
        fragment = {"index": 0, "function": {"arguments": arguments[start:start + step]}}
        chunks.append(chunk(cid, created, model, {"tool_calls": [fragment]}, None, with_usage))
    chunks.append(chunk(cid, created, model, {}, "tool_calls", with_usage))
    return cid, created, chunks


def sse(event: Json | str) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _input_count(inputs: Any) -> int:
    """One embedding per string or per token-id list; a flat token-id list is one input."""
    if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int):
        return len(inputs)
    return 1


def embedding_vector(index: int, dimensions: int) -> list[float]:
    """Values exactly representable in float32, so base64 round-trips compare equal."""
    return [((k % 7) - 3) / 8 + index / 64 for k in range(dimensions)]


def embeddings_list(model: str, inputs: Any, encoding_format: str, dimensions: int) -> Json:
    data: list[Json] = []
    for index in range(_input_count(inputs)):
        vector = embedding_vector(index, dimensions)
        encoded: list[float] | str = vector
        if encoding_format == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = count_input_tokens(inputs)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def model_object(model_id: str) -> Json:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}


def models_list(model_ids: list[str]) -> Json:
    return {"object": "list", "data": [model_object(m) for m in model_ids]}


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> Json:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _masked(key: str) -> str:
    return key[:3] + "*" * 10 + key[-4:] if len(key) > 8 else "*" * len(key)


def invalid_api_key(key: str | None) -> Json:
    if not key:
        return error_body(
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", "invalid_request_error")
    return error_body(f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                      "https://platform.openai.com/account/api-keys.", "invalid_request_error", None, "invalid_api_key")


def model_not_found(model: str) -> Json:
    return error_body(f"The model `{model}` does not exist or you do not have access to it.",
                      "invalid_request_error", None, "model_not_found")


def rate_limited(model: str) -> Json:
    return error_body(f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
                      "Limit 3, Used 3, Requested 1. Please try again in 1s.", "requests", None, "rate_limit_exceeded")


def server_error() -> Json:
    return error_body("The server had an error while processing your request. Sorry about that!", "server_error")


def invalid_request(message: str, param: str | None = None) -> Json:
    return error_body(message, "invalid_request_error", param)


def invalid_url(method: str, path: str) -> Json:
    return error_body(f"Invalid URL ({method} {path})", "invalid_request_error")
