"""An OpenAI chat-completions body → a Gemini `GenerateContentRequest`.

| OpenAI                                   | Gemini                                             |
|------------------------------------------|----------------------------------------------------|
| system / developer messages              | `systemInstruction.parts[].text`                   |
| user / assistant messages                | `contents[]` with role `user` / `model`            |
| text parts, `image_url` (data: URL)      | `text`, `inlineData {mimeType, data}`              |
| `image_url` (gs:// or https URL)         | `fileData {mimeType, fileUri}`                     |
| `input_audio`, `file` (data: URL)        | `inlineData`                                       |
| assistant `tool_calls`                   | `functionCall {name, args}` parts (+ the `thoughtSignature` its id carries) |
| tool messages                            | `functionResponse {name, response}` parts (user)   |
| `tools`, `tool_choice`                   | `tools[].functionDeclarations`, `toolConfig`       |
| temperature, top_p, max_(completion_)tokens, stop, n, seed, penalties, response_format | `generationConfig` |

Consecutive turns of one role are merged (Gemini wants them alternating). A body the
translation cannot represent is a 400 naming the field.
"""
from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from services.router.providers.gemini.response import split_signature
from services.router.providers.gemini.schema import gemini_schema
from shared.errors import InvalidRequest

Json = dict[str, Any]

_ROLES = {"user": "user", "assistant": "model", "tool": "user", "function": "user"}
_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3"}


def _data_url(url: str, param: str) -> Json:
    """`data:<mime>;base64,<data>` → inlineData."""
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise InvalidRequest("only base64 data: URLs can be sent inline to Gemini", param=param)
    return {"inlineData": {"mimeType": head[5:-7] or "application/octet-stream", "data": data}}


def _media(url: str, param: str) -> Json:
    if url.startswith("data:"):
        return _data_url(url, param)
    mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _part(part: Any, param: str) -> Json | None:
    if not isinstance(part, dict):
        raise InvalidRequest("a content part must be an object", param=param)
    kind = part.get("type")
    if kind == "text":
        return {"text": str(part.get("text") or "")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise InvalidRequest("image_url.url is required", param=param)
        return _media(url, param)
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        mime = _AUDIO_TYPES.get(str(audio.get("format")), f"audio/{audio.get('format')}")
        return {"inlineData": {"mimeType": mime, "data": str(audio.get("data") or "")}}
    if kind == "file":
        data = (part.get("file") or {}).get("file_data")
        if not isinstance(data, str) or not data.startswith("data:"):
            raise InvalidRequest("file parts are sent to Gemini as file_data data: URLs", param=param)
        return _data_url(data, param)
    if kind == "refusal":
        return None
    raise InvalidRequest(f"content part type {kind!r} is not supported by Gemini", param=param)


def _parts(content: Any, param: str) -> list[Json]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if isinstance(content, list):
        return [p for p in (_part(item, param) for item in content) if p is not None]
    raise InvalidRequest("content must be a string or a list of parts", param=param)


def _text(content: Any, param: str) -> str:
    return "".join(p.get("text", "") for p in _parts(content, param))


def _arguments(raw: Any, param: str) -> Json:
    if isinstance(raw, dict):
        return raw
    try:
        args = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("tool call arguments must be a JSON object", param=param) from None
    if not isinstance(args, dict):
        raise InvalidRequest("tool call arguments must be a JSON object", param=param)
    return args


def _tool_result(content: Any, param: str) -> Json:
    """Gemini wants an object; a JSON object is sent as it is, anything else as `output`."""
    text = content if isinstance(content, str) else _text(content, param)
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"output": text}


def _assistant_parts(message: Json, param: str, names: dict[str, str]) -> list[Json]:
    parts = _parts(message.get("content"), param)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            raise InvalidRequest("a tool call needs a function name", param=param)
        names[str(call.get("id"))] = function["name"]
        part: Json = {"functionCall": {"name": function["name"], "args": _arguments(function.get("arguments"), param)}}
        _, signature = split_signature(str(call.get("id") or ""))
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def contents_and_system(messages: list[Json]) -> tuple[list[Json], Json | None]:
    contents: list[Json] = []
    system: list[Json] = []
    names: dict[str, str] = {}  # tool_call_id → function name, for the results that follow
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        role = message.get("role")
        if role in ("system", "developer"):
            system += _parts(message.get("content"), param)
            continue
        if role == "assistant":
            parts = _assistant_parts(message, param, names)
        elif role in ("tool", "function"):
            name = message.get("name") or names.get(str(message.get("tool_call_id")))
            if not name:
                raise InvalidRequest("a tool message must answer a tool call of an earlier assistant message",
                                     param=f"{param}.tool_call_id")
            parts = [{"functionResponse": {"name": name, "response": _tool_result(message.get("content"), param)}}]
        elif role == "user":
            parts = _parts(message.get("content"), param)
        else:
            raise InvalidRequest(f"message role {role!r} is not supported by Gemini", param=f"{param}.role")
        if not parts:
            continue
        gemini_role = _ROLES[str(role)]
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    return contents, ({"parts": system} if system else None)


def _tools(body: Json) -> list[Json] | None:
    tools = body.get("tools")
    if not tools:
        return None
    declarations = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        if not isinstance(function, dict) or not function.get("name"):
            raise InvalidRequest("Gemini takes function tools with a name", param=f"tools[{index}]")
        declaration: Json = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters") and (function["parameters"].get("properties") or {}):
            declaration["parameters"] = gemini_schema(function["parameters"])
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def _tool_config(choice: Any) -> Json | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        return {"functionCallingConfig": {"mode": _CHOICE_MODES[choice]}}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not name:
        raise InvalidRequest("tool_choice must be auto, none, required or name a function", param="tool_choice")
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def _response_format(value: Any) -> Json:
    if not isinstance(value, dict) or value.get("type") in (None, "text"):
        return {}
    if value["type"] == "json_object":
        return {"responseMimeType": "application/json"}
    if value["type"] == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        out: Json = {"responseMimeType": "application/json"}
        if isinstance(schema, dict):
            out["responseSchema"] = gemini_schema(schema)
        return out
    raise InvalidRequest(f"response_format type {value['type']!r} is not supported", param="response_format")


def generation_config(body: Json) -> Json:
    config: Json = {}
    for source, target in (("temperature", "temperature"), ("top_p", "topP"), ("n", "candidateCount"),
                           ("seed", "seed"), ("presence_penalty", "presencePenalty"),
                           ("frequency_penalty", "frequencyPenalty")):
        if body.get(source) is not None:
            config[target] = body[source]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    config.update(_response_format(body.get("response_format")))
    return config


def generate_content_request(body: Json) -> Json:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    contents, system = contents_and_system(messages)
    if not contents:
        raise InvalidRequest("Gemini needs at least one user or assistant message", param="messages")
    request: Json = {"contents": contents}
    if system is not None:
        request["systemInstruction"] = system
    tools = _tools(body)
    if tools is not None:
        request["tools"] = tools
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config is not None:
            request["toolConfig"] = tool_config
    config = generation_config(body)
    if config:
        request["generationConfig"] = config
    return request
