"""An OpenAI chat-completions body as an Anthropic Messages API request.

| OpenAI                                          | Anthropic                                              |
|-------------------------------------------------|--------------------------------------------------------|
| `system` / `developer` messages                 | top-level `system` (text blocks, in order)             |
| `user` text and `image_url` parts               | `text` blocks; `image` blocks (data: URL → `base64`, http(s) → `url`) |
| `assistant` content and `tool_calls`            | `text` blocks and `tool_use` blocks (`input` parsed from `arguments`) |
| `tool` messages                                 | `tool_result` blocks in a user turn                    |
| `tools` (functions), `tool_choice`              | `tools` (`input_schema`), `tool_choice` auto/none/any/tool |
| `parallel_tool_calls: false`                    | `tool_choice.disable_parallel_tool_use: true`          |
| `max_completion_tokens`, `max_tokens`           | `max_tokens` (required; else the provider's `default_max_tokens`) |
| `temperature`, `top_p`, `stop`, `user`          | `temperature` (0..1), `top_p`, `stop_sequences`, `metadata.user_id` |

Consecutive turns of one role are merged into one (tool results then the user's text).
What cannot be expressed (`n` > 1, `logprobs`, audio and file parts, JSON response formats)
is refused with a 400 naming the field, never silently dropped; penalties and `seed`
have no Anthropic counterpart and are ignored.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from shared.errors import InvalidRequest

Json = dict[str, Any]

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.+)$", re.DOTALL)


def _refuse(provider: str, message: str, param: str | None = None, code: str = "unsupported_parameter") -> InvalidRequest:
    return InvalidRequest(f"{message} (provider {provider} speaks the Anthropic Messages API)", param=param, code=code)


def _invalid(provider: str, message: str, param: str) -> InvalidRequest:
    return _refuse(provider, message, param, code="invalid_request")


class RequestTranslator:
    """Turns one OpenAI body into an Anthropic body; errors name the provider and the field."""

    def __init__(self, provider: str, default_max_tokens: int) -> None:
        self._provider = provider
        self._default_max_tokens = default_max_tokens

    def translate(self, body: Json, model: str, *, stream: bool) -> Json:
        self._check_unsupported(body)
        system, messages = self._messages(body.get("messages"))
        out: Json = {"model": model, "max_tokens": self._max_tokens(body), "messages": messages}
        if system:
            out["system"] = system
        self._sampling(body, out)
        tools = body.get("tools")
        if tools:
            out["tools"] = [self._tool(tool, index) for index, tool in enumerate(tools)]
        choice = self._tool_choice(body)
        if choice is not None:
            out["tool_choice"] = choice
        if isinstance(body.get("user"), str):
            out["metadata"] = {"user_id": body["user"]}
        if stream:
            out["stream"] = True
        return out

    # -- fields --------------------------------------------------------------------------
    def _check_unsupported(self, body: Json) -> None:
        if (body.get("n") or 1) > 1:
            raise _refuse(self._provider, "`n` greater than 1 is not supported", "n")
        if body.get("logprobs"):
            raise _refuse(self._provider, "`logprobs` is not supported", "logprobs")
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
            raise _refuse(self._provider, f"`response_format` of type {response_format.get('type')!r} is not supported",
                          "response_format")

    def _max_tokens(self, body: Json) -> int:
        for name in ("max_completion_tokens", "max_tokens"):
            value = body.get(name)
            if isinstance(value, int) and value > 0:
                return value
        return self._default_max_tokens

    def _sampling(self, body: Json, out: Json) -> None:
        temperature = body.get("temperature")
        if temperature is not None:
            if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
                raise _refuse(self._provider, "`temperature` must be between 0 and 1", "temperature")
            out["temperature"] = temperature
        if body.get("top_p") is not None:
            out["top_p"] = body["top_p"]
        stop = body.get("stop")
        if isinstance(stop, str):
            out["stop_sequences"] = [stop]
        elif isinstance(stop, list) and stop:
            out["stop_sequences"] = [str(s) for s in stop]

    def _tool(self, tool: Any, index: int) -> Json:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _refuse(self._provider, "only `function` tools with a name are supported", f"tools[{index}]")
        out: Json = {"name": function["name"],
                     "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
        if function.get("description"):
            out["description"] = function["description"]
        return out

    def _tool_choice(self, body: Json) -> Json | None:
        choice = body.get("tool_choice")
        out: Json | None
        if choice is None:
            out = None
        elif choice in ("auto", "none"):
            out = {"type": choice}
        elif choice == "required":
            out = {"type": "any"}
        elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
            out = {"type": "tool", "name": choice["function"]["name"]}
        else:
            raise _refuse(self._provider, "unknown `tool_choice`", "tool_choice")
        if body.get("parallel_tool_calls") is False and body.get("tools"):
            out = {**(out or {"type": "auto"})}
            if out["type"] != "none":
                out["disable_parallel_tool_use"] = True
        return out

    # -- messages ------------------------------------------------------------------------
    def _messages(self, messages: Any) -> tuple[list[Json], list[Json]]:
        if not isinstance(messages, list):
            raise _invalid(self._provider, "`messages` must be a list.", "messages")
        system: list[Json] = []
        turns: list[Json] = []
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise _invalid(self._provider, "Each message must be an object.", f"messages[{index}]")
            role = message.get("role")
            where = f"messages[{index}]"
            if role in ("system", "developer"):
                system.extend(self._text_blocks(message.get("content"), where))
            elif role == "user":
                _append(turns, "user", self._user_blocks(message.get("content"), where))
            elif role == "assistant":
                _append(turns, "assistant", self._assistant_blocks(message, where))
            elif role == "tool":
                _append(turns, "user", [self._tool_result(message, where)])
            else:
                raise _refuse(self._provider, f"messages with role {role!r} are not supported", f"{where}.role")
        return system, turns

    def _text_blocks(self, content: Any, where: str) -> list[Json]:
        if content is None or content == "":
            return []
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        if isinstance(content, list):
            blocks = []
            for index, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise _refuse(self._provider, "only text parts are supported here", f"{where}.content[{index}]")
                blocks.append(_text_block(part))
            return blocks
        raise _invalid(self._provider, "Message content must be a string or a list of parts.", f"{where}.content")

    def _user_blocks(self, content: Any, where: str) -> list[Json]:
        if not isinstance(content, list):
            return self._text_blocks(content, where)
        blocks = []
        for index, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                blocks.append(_text_block(part))
            elif kind == "image_url":
                blocks.append(self._image(part, f"{where}.content[{index}]"))
            else:
                raise _refuse(self._provider, f"content parts of type {kind!r} are not supported",
                              f"{where}.content[{index}]")
        return blocks

    def _image(self, part: Json, where: str) -> Json:
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise _invalid(self._provider, "An image_url part needs a url.", f"{where}.image_url")
        if url.startswith(("http://", "https://")):
            return {"type": "image", "source": {"type": "url", "url": url}}
        match = _DATA_URL.match(url)
        if match is None:
            raise _refuse(self._provider, "images must be http(s) URLs or base64 data: URLs", f"{where}.image_url")
        media = match["media"].lower()
        if media not in IMAGE_MEDIA_TYPES:
            raise _refuse(self._provider, f"image type {media!r} is not supported (use {', '.join(IMAGE_MEDIA_TYPES)})",
                          f"{where}.image_url")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": match["data"]}}

    def _assistant_blocks(self, message: Json, where: str) -> list[Json]:
        blocks = self._text_blocks(message.get("content"), where)
        for index, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(call.get("id"), str):
                raise _invalid(self._provider, "A tool call needs an id and a function.", f"{where}.tool_calls[{index}]")
            arguments = function.get("arguments") or "{}"
            try:
                parsed = orjson.loads(arguments)
            except orjson.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                raise _invalid(self._provider, "Tool call arguments must be a JSON object.",
                               f"{where}.tool_calls[{index}].function.arguments")
            blocks.append({"type": "tool_use", "id": call["id"], "name": function.get("name"), "input": parsed})
        return blocks

    def _tool_result(self, message: Json, where: str) -> Json:
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise _invalid(self._provider, "A tool message needs a tool_call_id.", f"{where}.tool_call_id")
        content = message.get("content")
        result: Json = {"type": "tool_result", "tool_use_id": call_id}
        if isinstance(content, str):
            result["content"] = content
        elif content:
            result["content"] = self._text_blocks(content, where)
        return result


def _text_block(part: Json) -> Json:
    block: Json = {"type": "text", "text": str(part.get("text", ""))}
    if isinstance(part.get("cache_control"), dict):  # prompt-caching breakpoints, as Anthropic clients send them
        block["cache_control"] = part["cache_control"]
    return block


def _append(turns: list[Json], role: str, blocks: list[Json]) -> None:
    """Add a turn; a turn of the same role as the last is merged into it (Anthropic alternates roles)."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})
