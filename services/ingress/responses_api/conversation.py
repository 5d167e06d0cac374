"""A Responses API call's conversation, as the ingress keeps and sends it.

The store keeps each response with its conversation as Responses API input items: the
earlier turns, this call's `input` (a string as one user message), then the response's
`output` items, which the API takes back as input (messages, function calls, reasoning).
A call naming `previous_response_id` is sent with that conversation first in its `input`
and without `previous_response_id`, to whichever deployment serves it: a provider with its
own Responses API reads the items as they are (it never needs to know the gateway's ids,
so failover across providers and accounts keeps the conversation); the translator makes
chat messages of them. `instructions` are never carried over, as OpenAI does.

Rows stored before items were (their conversation as chat messages) are read as items.
"""
from __future__ import annotations

from typing import Any

from shared.errors import InvalidRequest
from shared.openai_responses import ResponsesRequest

Json = dict[str, Any]


def input_items(value: Any) -> list[Json]:
    """A request's `input` as items (a string is one user message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def outgoing(request: ResponsesRequest, body: Json, history: list[Json]) -> tuple[Json, list[Json]]:
    """The body the pipeline gets (the client's, earlier turns first in its `input`) and the
    conversation it holds (stored with the answer)."""
    if request.background:
        raise InvalidRequest("Background responses are not supported by this gateway.", param="background",
                             code="unsupported_value")
    conversation = [*history, *input_items(body.get("input"))]
    if not conversation:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    sent = {name: value for name, value in body.items() if name != "previous_response_id"}
    if history:
        sent["input"] = conversation
    return sent, conversation


def presented(response: Json, request: ResponsesRequest) -> Json:
    """A `response` object as the client sees it, whichever deployment made it: the model it
    asked for (not the deployment's), the `previous_response_id` it gave."""
    return {**response, "model": request.model, "previous_response_id": request.previous_response_id}


def kept_items(conversation: list[Json], response: Json) -> list[Json]:
    """What the next turn goes on from: the conversation, then the response's output."""
    output = response.get("output")
    return [*conversation, *(item for item in output if isinstance(item, dict))] if isinstance(output, list) \
        else conversation


def _text_parts(content: Any, kind: str) -> Any:
    if not isinstance(content, list):
        return content
    parts: list[Json] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append({"type": kind, "text": part.get("text", "")})
        elif isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url") or {}
            parts.append({"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail", "auto")})
    return parts


def items_of_messages(messages: list[Json]) -> list[Json]:
    """A conversation stored as chat messages (rows from before items) as Responses API items."""
    items: list[Json] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id", ""),
                          "output": message.get("content") or ""})
            continue
        content = message.get("content")
        if content:
            kind = "output_text" if role == "assistant" else "input_text"
            items.append({"type": "message", "role": role, "content": _text_parts(content, kind)})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            items.append({"type": "function_call", "call_id": call.get("id", ""), "name": function.get("name", ""),
                          "arguments": function.get("arguments", "")})
    return items
