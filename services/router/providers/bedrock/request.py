"""An OpenAI chat-completions body as a Bedrock Converse request (`POST /model/{modelId}/converse`).

| OpenAI                                  | Converse                                                  |
|-----------------------------------------|-----------------------------------------------------------|
| `system` / `developer` messages         | `system`: `[{"text"}]`, in order                          |
| `user` text and `image_url` parts       | `{"text"}`; `{"image": {"format", "source": {"bytes"}}}` (data: URLs only) |
| `assistant` content and `tool_calls`    | `{"text"}` and `{"toolUse": {"toolUseId", "name", "input"}}` |
| `tool` messages                         | `{"toolResult": {"toolUseId", "content": [{"text"}]}}` in a user turn |
| `cache_control` on a text part          | a `{"cachePoint": {"type": "default"}}` block after it    |
| `tools` (functions)                     | `toolConfig.tools[].toolSpec` (`name`, `description`, `inputSchema.json`) |
| `tool_choice` auto / required / {function} | `toolConfig.toolChoice` `{"auto":{}}` / `{"any":{}}` / `{"tool":{"name"}}` |
| `tool_choice: "none"`                   | no `toolConfig` (refused when the history holds tool calls: Bedrock then needs one) |
| `max_completion_tokens`, `max_tokens`   | `inferenceConfig.maxTokens`                               |
| `temperature` (0..1), `top_p`, `stop`   | `inferenceConfig.temperature`, `topP`, `stopSequences`    |

Consecutive turns of one role are merged (Converse alternates user and assistant). What
Converse cannot express (`n` > 1, `logprobs`, JSON response formats, http(s) image URLs,
audio and file parts) is refused with a 400 naming the field; penalties, `seed` and `user`
have no counterpart and are not sent.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from shared.errors import InvalidRequest

Json = dict[str, Any]

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.+)$", re.DOTALL)
CACHE_POINT: Json = {"cachePoint": {"type": "default"}}


class RequestTranslator:
    """Turns one OpenAI body into a Converse body; errors name the provider and the field."""

    def __init__(self, provider: str) -> None:
        self._provider = provider

    def _refuse(self, message: str, param: str | None, code: str = "unsupported_parameter") -> InvalidRequest:
        return InvalidRequest(f"{message} (provider {self._provider} speaks the Bedrock Converse API)",
                              param=param, code=code)

    def _invalid(self, message: str, param: str) -> InvalidRequest:
        return self._refuse(message, param, code="invalid_request")

    def translate(self, body: Json) -> Json:
        self._check_unsupported(body)
        system, messages = self._messages(body.get("messages"))
        out: Json = {"messages": messages}
        if system:
            out["system"] = system
        inference = self._inference(body)
        if inference:
            out["inferenceConfig"] = inference
        tool_config = self._tool_config(body, messages)
        if tool_config is not None:
            out["toolConfig"] = tool_config
        return out

    # -- fields --------------------------------------------------------------------------
    def _check_unsupported(self, body: Json) -> None:
        if (body.get("n") or 1) > 1:
            raise self._refuse("`n` greater than 1 is not supported", "n")
        if body.get("logprobs"):
            raise self._refuse("`logprobs` is not supported", "logprobs")
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
            raise self._refuse(f"`response_format` of type {response_format.get('type')!r} is not supported",
                               "response_format")

    def _inference(self, body: Json) -> Json:
        out: Json = {}
        for name in ("max_completion_tokens", "max_tokens"):
            value = body.get(name)
            if isinstance(value, int) and value > 0:
                out["maxTokens"] = value
                break
        temperature = body.get("temperature")
        if temperature is not None:
            if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
                raise self._refuse("`temperature` must be between 0 and 1", "temperature")
            out["temperature"] = temperature
        if body.get("top_p") is not None:
            out["topP"] = body["top_p"]
        stop = body.get("stop")
        if isinstance(stop, str) and stop:
            out["stopSequences"] = [stop]
        elif isinstance(stop, list) and stop:
            out["stopSequences"] = [str(s) for s in stop if s]
        return out

    def _tool_config(self, body: Json, messages: list[Json]) -> Json | None:
        tools, choice = body.get("tools"), body.get("tool_choice")
        if not tools:
            return None
        if choice == "none":
            if any("toolUse" in block or "toolResult" in block for m in messages for block in m["content"]):
                raise self._refuse("`tool_choice: none` cannot be expressed once the conversation holds tool calls "
                                   "(Bedrock then needs its tools)", "tool_choice")
            return None
        out: Json = {"tools": [self._tool(tool, index) for index, tool in enumerate(tools)]}
        if choice == "auto":
            out["toolChoice"] = {"auto": {}}
        elif choice == "required":
            out["toolChoice"] = {"any": {}}
        elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
            out["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
        elif choice is not None:
            raise self._invalid("`tool_choice` must be none, auto, required or a function", "tool_choice")
        return out

    def _tool(self, tool: Any, index: int) -> Json:
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise self._refuse("only `function` tools with a name are supported", f"tools[{index}]")
        spec: Json = {"name": function["name"],
                      "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}}}
        if function.get("description"):
            spec["description"] = function["description"]
        return {"toolSpec": spec}

    # -- messages ------------------------------------------------------------------------
    def _messages(self, messages: Any) -> tuple[list[Json], list[Json]]:
        if not isinstance(messages, list):
            raise self._invalid("`messages` must be a list.", "messages")
        system: list[Json] = []
        turns: list[Json] = []
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            if not isinstance(message, dict):
                raise self._invalid("Each message must be an object.", where)
            role = message.get("role")
            if role in ("system", "developer"):
                system.extend(self._text_blocks(message.get("content"), where))
            elif role == "user":
                _append(turns, "user", self._user_blocks(message.get("content"), where))
            elif role == "assistant":
                _append(turns, "assistant", self._assistant_blocks(message, where))
            elif role == "tool":
                _append(turns, "user", [self._tool_result(message, where)])
            else:
                raise self._refuse(f"messages with role {role!r} are not supported", f"{where}.role")
        return system, turns

    def _text_blocks(self, content: Any, where: str) -> list[Json]:
        if content is None or content == "":
            return []
        if isinstance(content, str):
            return [{"text": content}]
        if isinstance(content, list):
            blocks: list[Json] = []
            for index, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise self._refuse("only text parts are supported here", f"{where}.content[{index}]")
                blocks.extend(_text(part))
            return blocks
        raise self._invalid("Message content must be a string or a list of parts.", f"{where}.content")

    def _user_blocks(self, content: Any, where: str) -> list[Json]:
        if not isinstance(content, list):
            return self._text_blocks(content, where)
        blocks: list[Json] = []
        for index, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                blocks.extend(_text(part))
            elif kind == "image_url":
                blocks.append(self._image(part, f"{where}.content[{index}]"))
            else:
                raise self._refuse(f"content parts of type {kind!r} are not supported", f"{where}.content[{index}]")
        return blocks

    def _image(self, part: Json, where: str) -> Json:
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise self._invalid("An image_url part needs a url.", f"{where}.image_url")
        match = _DATA_URL.match(url)
        if match is None:
            raise self._refuse("images must be base64 data: URLs (Bedrock takes image bytes, not URLs)",
                               f"{where}.image_url")
        image_format = IMAGE_FORMATS.get(match["media"].lower())
        if image_format is None:
            raise self._refuse(f"image type {match['media']!r} is not supported (use png, jpeg, gif or webp)",
                               f"{where}.image_url")
        # a blob in Converse's JSON is base64: the data URL's payload is sent as it came
        return {"image": {"format": image_format, "source": {"bytes": match["data"].strip()}}}

    def _assistant_blocks(self, message: Json, where: str) -> list[Json]:
        blocks = self._text_blocks(message.get("content"), where)
        for index, call in enumerate(message.get("tool_calls") or ()):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(call.get("id"), str):
                raise self._invalid("A tool call needs an id and a function.", f"{where}.tool_calls[{index}]")
            try:
                parsed = orjson.loads(function.get("arguments") or "{}")
            except orjson.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict):
                raise self._invalid("Tool call arguments must be a JSON object.",
                                    f"{where}.tool_calls[{index}].function.arguments")
            blocks.append({"toolUse": {"toolUseId": call["id"], "name": function.get("name"), "input": parsed}})
        return blocks

    def _tool_result(self, message: Json, where: str) -> Json:
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise self._invalid("A tool message needs a tool_call_id.", f"{where}.tool_call_id")
        content = [block for block in self._text_blocks(message.get("content"), where) if "text" in block]
        return {"toolResult": {"toolUseId": call_id, "content": content or [{"text": ""}]}}


def _text(part: Json) -> list[Json]:
    text = str(part.get("text", ""))
    blocks: list[Json] = [{"text": text}] if text else []
    if blocks and isinstance(part.get("cache_control"), dict):  # a prompt-caching breakpoint after this block
        blocks.append(CACHE_POINT)
    return blocks


def _append(turns: list[Json], role: str, blocks: list[Json]) -> None:
    """Add a turn; a turn of the same role as the last is merged into it (Converse alternates roles)."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})
