"""An Anthropic Messages request as the gateway's OpenAI chat-completions body.

| Anthropic                                   | OpenAI chat completions                                  |
|---------------------------------------------|----------------------------------------------------------|
| `system` (string or text blocks)            | a first `system` message (string or text parts)           |
| user `text` / `image` blocks                | `text` / `image_url` parts (base64 → `data:` URL, url → url) |
| user `tool_result` blocks                   | `tool` messages, before the user's other parts (a result's images go with those) |
| assistant `text` / `tool_use` blocks        | `content` and `tool_calls` (`arguments` = the input as JSON) |
| `tools` (`input_schema`, `strict`)          | `function` tools (`parameters`, `strict`)                 |
| `tool_choice` auto / any / tool / none      | `auto` / `required` / the named function / `none`         |
| `disable_parallel_tool_use: true`           | `parallel_tool_calls: false`                              |
| `max_tokens`, `temperature`, `top_p`        | the same names                                            |
| `stop_sequences`, `metadata.user_id`        | `stop`, `user`                                            |
| `stream: true`                              | `stream: true` with `stream_options.include_usage` (usage for `message_delta`) |

`cache_control` on text blocks is kept on the text parts (the `anthropic` provider type
sends it on as prompt-caching breakpoints). Not carried, having no chat-completions
counterpart: `top_k`, `is_error` on tool results, `cache_control` on images and tools,
`service_tier`, `citations`.
"""
from __future__ import annotations

from typing import Any

import orjson

from services.ingress.anthropic_api.request import (
    CountTokensRequest,
    ImageBlock,
    Message,
    MessagesRequest,
    TextBlock,
    Tool,
    ToolChoice,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolResultBlock,
    ToolUseBlock,
)
from shared.errors import InvalidRequest

Json = dict[str, Any]


def chat_body(request: MessagesRequest) -> Json:
    """The OpenAI body for one Messages request (its `model` is the gateway's model name)."""
    body = prompt_body(request)
    body["max_tokens"] = request.max_tokens
    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop_sequences:
        body["stop"] = list(request.stop_sequences)
    if request.metadata is not None and request.metadata.user_id:
        body["user"] = request.metadata.user_id
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def prompt_body(request: CountTokensRequest) -> Json:
    """What the prompt is made of: model, messages, tools, tool choice."""
    body: Json = {"model": request.model, "messages": openai_messages(request.system, request.messages)}
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = _tool_choice(request.tool_choice)
        if getattr(request.tool_choice, "disable_parallel_tool_use", None) and request.tools:
            body["parallel_tool_calls"] = False
    return body


def openai_messages(system: str | list[TextBlock] | None, messages: list[Message]) -> list[Json]:
    out: list[Json] = []
    if isinstance(system, str) and system:
        out.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        out.append({"role": "system", "content": [_text_part(block) for block in system]})
    for message in messages:
        if message.role == "user":
            out.extend(_user_messages(message.content))
        else:
            out.append(_assistant_message(message.content))
    return out


def _text_part(block: TextBlock) -> Json:
    part: Json = {"type": "text", "text": block.text}
    if block.cache_control is not None:
        part["cache_control"] = block.cache_control.model_dump(exclude_none=True)
    return part


def _image_part(block: ImageBlock) -> Json:
    source = block.source
    url = source.url if source.type == "url" else f"data:{source.media_type};base64,{source.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _user_messages(content: str | list[Any]) -> list[Json]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[Json] = []
    result_images: list[Json] = []
    parts: list[Json] = []
    for block in content:
        if isinstance(block, ToolResultBlock):
            tool_messages.append(_tool_message(block))
            result_images.extend(_image_part(part) for part in _result_parts(block) if isinstance(part, ImageBlock))
        elif isinstance(block, TextBlock):
            parts.append(_text_part(block))
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
        else:  # a tool_use block is the assistant's; Anthropic refuses it in a user turn too
            raise _misplaced(block)
    following = result_images + parts
    return tool_messages + ([{"role": "user", "content": following}] if following else [])


def _result_parts(block: ToolResultBlock) -> list[TextBlock | ImageBlock]:
    return block.content if isinstance(block.content, list) else []


def _tool_message(block: ToolResultBlock) -> Json:
    if isinstance(block.content, str):
        content: str | list[Json] = block.content
    else:
        texts = [_text_part(part) for part in _result_parts(block) if isinstance(part, TextBlock)]
        content = texts or ""
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": content}


def _assistant_message(content: str | list[Any]) -> Json:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[TextBlock] = []
    calls: list[Json] = []
    for block in content:
        if isinstance(block, TextBlock):
            texts.append(block)
        elif isinstance(block, ToolUseBlock):
            calls.append({"id": block.id, "type": "function",
                          "function": {"name": block.name, "arguments": orjson.dumps(block.input).decode()}})
        else:
            raise _misplaced(block)
    message: Json = {"role": "assistant"}
    if any(block.cache_control is not None for block in texts):
        message["content"] = [_text_part(block) for block in texts]
    else:
        message["content"] = "".join(block.text for block in texts) if texts else None
    if calls:
        message["tool_calls"] = calls
    return message


def _misplaced(block: Any) -> InvalidRequest:
    role = "assistant" if isinstance(block, ToolUseBlock) else "user"
    return InvalidRequest(f"A `{block.type}` block may only appear in a `{role}` message.", param="messages",
                          code="invalid_value")


def _tool(tool: Tool) -> Json:
    function: Json = {"name": tool.name, "parameters": tool.input_schema}
    if tool.description:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | Json:
    if isinstance(choice, ToolChoiceAuto):
        return "auto"
    if isinstance(choice, ToolChoiceAny):
        return "required"
    if isinstance(choice, ToolChoiceNone):
        return "none"
    return {"type": "function", "function": {"name": choice.name}}
