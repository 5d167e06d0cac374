"""OpenAI Responses API payloads, shaped as in the API reference ("Create a model response",
"The response object", "Streaming events"): the fake upstream answers with them, tests
compare against them. Token counts are deterministic: input tokens are the words of
`instructions` and of every input text; output tokens are `COMPLETION_TOKENS` (10), plus
`REASONING_TOKENS` for a reasoning model (`o*`), which also answers with a reasoning item;
`cache-hit` had a cached prefix of `CACHED_TOKENS` before the input (`input_tokens_details`).
"""
from __future__ import annotations

import json
import secrets
import time
from typing import Any

from services.router.providers.openai.payloads import CACHED_TOKENS, COMPLETION_TOKENS, chosen_tool

Json = dict[str, Any]

REPLY_TEXT = "Hello! This is the fake OpenAI Responses API answering."
REPLY_PIECES = ["Hello", "!", " This", " is", " the", " fake", " OpenAI", " Responses", " API", " answering."]
REASONING_TOKENS = 64


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def count_input_tokens(body: Json) -> int:
    """Words of `instructions` and of the input: messages' text, function results' output."""
    items = body.get("input")
    texts = [_text_of(body.get("instructions"))]
    if isinstance(items, str):
        texts.append(items)
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            texts.append(_text_of(item.get("content", item.get("output"))))
    return sum(len(text.split()) for text in texts)


def usage(input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0) -> Json:
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens}


def message_item(text: str, status: str = "completed") -> Json:
    return {"type": "message", "id": _id("msg"), "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text else []}


def function_call_item(name: str, arguments: str, status: str = "completed") -> Json:
    return {"type": "function_call", "id": _id("fc"), "call_id": "call_" + secrets.token_hex(12), "name": name,
            "arguments": arguments, "status": status}


def reasoning_item() -> Json:
    return {"type": "reasoning", "id": _id("rs"), "summary": []}


def response_object(body: Json, model: str, output: list[Json], use: Json | None, status: str = "completed") -> Json:
    """The response object, the request's settings echoed."""
    return {
        "id": _id("resp"), "object": "response", "created_at": int(time.time()), "status": status,
        "background": False, "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "model": model, "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None}, "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0), "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": use, "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _function_tool(body: Json) -> tuple[str, str] | None:
    """The function tool the model calls: one is offered and the input does not end with a result."""
    items = body.get("input")
    if isinstance(items, list) and items and isinstance(items[-1], dict) \
            and items[-1].get("type") == "function_call_output":
        return None
    tools = [{"type": "function", "function": t} for t in body.get("tools") or []
             if isinstance(t, dict) and t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    named = {"function": {"name": choice.get("name")}} if isinstance(choice, dict) else choice
    return chosen_tool({"tools": tools, "tool_choice": named})


def _reasons(model: str) -> bool:
    return model.startswith("o")


def response(body: Json, model: str) -> Json:
    """The whole answer to `POST /v1/responses`."""
    tool = _function_tool(body)
    output = [reasoning_item()] if _reasons(model) else []
    output.append(function_call_item(*tool) if tool else message_item(REPLY_TEXT))
    reasoning = REASONING_TOKENS if _reasons(model) else 0
    cached = CACHED_TOKENS if model == "cache-hit" else 0
    return response_object(body, model, output, usage(count_input_tokens(body) + cached, COMPLETION_TOKENS + reasoning,
                                                      cached=cached, reasoning=reasoning))


def response_events(body: Json, model: str) -> list[Json]:
    """The typed events of `POST /v1/responses` with `stream: true`, in order, numbered."""
    final = response(body, model)
    shell = {**final, "status": "in_progress", "output": [], "usage": None}
    events: list[Json] = [{"type": "response.created", "response": shell},
                          {"type": "response.in_progress", "response": shell}]
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            events += _message_events(index, item)
        elif item["type"] == "function_call":
            events += _function_call_events(index, item)
        else:
            events += [{"type": "response.output_item.added", "output_index": index, "item": item},
                       {"type": "response.output_item.done", "output_index": index, "item": item}]
    events.append({"type": "response.completed", "response": final})
    return [{"type": e["type"], "sequence_number": n, **{k: v for k, v in e.items() if k != "type"}}
            for n, e in enumerate(events)]


def _message_events(index: int, item: Json) -> list[Json]:
    ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
    part = item["content"][0]
    return [
        {"type": "response.output_item.added", "output_index": index,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **ids, "part": {**part, "text": ""}},
        *({"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []} for piece in REPLY_PIECES),
        {"type": "response.output_text.done", **ids, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **ids, "part": part},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def _function_call_events(index: int, item: Json) -> list[Json]:
    ids = {"item_id": item["id"], "output_index": index}
    arguments = item["arguments"]
    half = len(arguments) // 2
    return [
        {"type": "response.output_item.added", "output_index": index,
         "item": {**item, "status": "in_progress", "arguments": ""}},
        *({"type": "response.function_call_arguments.delta", **ids, "delta": piece}
          for piece in (arguments[:half], arguments[half:])),
        {"type": "response.function_call_arguments.done", **ids, "arguments": arguments},
        {"type": "response.output_item.done", "output_index": index, "item": item},
    ]


def error_event(message: str, code: str = "server_error") -> Json:
    """An `error` event, as a stream that fails after it began sends it."""
    return {"type": "error", "code": code, "message": message, "param": None}


def sse(event: Json) -> bytes:
    """One event on the wire: its type as the `event:` line, as OpenAI sends them."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()
