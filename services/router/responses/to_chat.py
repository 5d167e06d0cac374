"""A Responses API request → the gateway's chat completions body.

| Responses API                                   | chat completions                                      |
|-------------------------------------------------|-------------------------------------------------------|
| `instructions`                                  | a first `system` message (not carried to later turns) |
| `input` string                                  | one `user` message                                    |
| message item, `input_text` / `output_text`      | message of that role, `text` parts (assistant: text)  |
| `input_image` (`image_url`, `detail`)           | `image_url` part                                      |
| `function_call` items (after an assistant text) | one assistant message with `tool_calls`               |
| `function_call_output`                          | `tool` message with `tool_call_id`                    |
| `reasoning` items                               | left out (chat models have no place for them)         |
| other items and parts (`item_reference`, files) | refused (400 naming them)                             |
| function tools, `tool_choice` `{type, name}`    | `tools[].function`, `tool_choice.function.name`       |
| `max_output_tokens`                             | `max_completion_tokens`                               |
| `text.format` json_schema / json_object         | `response_format`                                     |
| `reasoning.effort`                              | `reasoning_effort`                                    |
"""
from __future__ import annotations

from typing import Any

from shared.errors import InvalidRequest
from shared.openai_responses import (
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    InputText,
    MessageItem,
    NamedToolChoice,
    OutputText,
    ReasoningItem,
    RefusalPart,
    ResponsesRequest,
    TextFormat,
)

Json = dict[str, Any]


def _part(part: ContentPart, param: str) -> Json:
    if isinstance(part, InputText | OutputText):
        return {"type": "text", "text": part.text}
    if isinstance(part, RefusalPart):
        return {"type": "text", "text": part.refusal}
    if isinstance(part, InputImage):
        if not part.image_url:
            raise InvalidRequest("Only images given by `image_url` are supported; `file_id` is not.", param=param,
                                 code="unsupported_value")
        return {"type": "image_url", "image_url": {"url": part.image_url, "detail": part.detail}}
    raise InvalidRequest(f"Content parts of type '{part.type}' cannot be sent to this model; route it to a provider "
                         "that serves the Responses API.", param=f"{param}.type", code="unsupported_value")


def _text_only(parts: list[Json]) -> str:
    return "".join(p["text"] for p in parts if p["type"] == "text")


def _message(item: MessageItem, param: str) -> Json:
    parts = [_part(part, f"{param}.content[{i}]") for i, part in enumerate(item.content)]
    if item.role == "assistant" or (all(p["type"] == "text" for p in parts) and (item.role != "user" or len(parts) == 1)):
        return {"role": item.role, "content": _text_only(parts)}
    return {"role": item.role, "content": parts}


def _tool_output(item: FunctionCallOutputItem, param: str) -> Json:
    parts = [_part(part, f"{param}.output[{i}]") for i, part in enumerate(item.output)]
    return {"role": "tool", "tool_call_id": item.call_id, "content": _text_only(parts)}


def input_messages(request: ResponsesRequest) -> list[Json]:
    """The request's `input` as chat messages; function calls join the assistant message before them."""
    messages: list[Json] = []
    for index, item in enumerate(request.input or []):
        param = f"input[{index}]"
        if isinstance(item, MessageItem):
            messages.append(_message(item, param))
        elif isinstance(item, FunctionCallItem):
            call = {"id": item.call_id, "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            messages.append(_tool_output(item, param))
        elif isinstance(item, ReasoningItem):
            continue
        else:
            raise InvalidRequest(f"Input items of type '{item.type}' cannot be sent to this model; route it to a "
                                 "provider that serves the Responses API.", param=f"{param}.type",
                                 code="unsupported_value")
    return messages


def _tools(request: ResponsesRequest) -> list[Json]:
    tools: list[Json] = []
    for index, tool in enumerate(request.tools or []):
        if tool.type != "function":
            raise InvalidRequest(f"Tools of type '{tool.type}' are not supported by this gateway; use function tools.",
                                 param=f"tools[{index}].type", code="unsupported_value")
        if not tool.name:
            raise InvalidRequest(f"Missing required parameter: 'tools[{index}].name'.", param=f"tools[{index}].name",
                                 code="missing_required_parameter")
        function: Json = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        if tool.parameters is not None:
            function["parameters"] = tool.parameters
        if tool.strict is not None:
            function["strict"] = tool.strict
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(choice: str | NamedToolChoice) -> str | Json:
    if isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice.name}}


def _response_format(fmt: TextFormat) -> Json | None:
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if not fmt.name or fmt.json_schema is None:
        raise InvalidRequest("A `json_schema` text format needs a `name` and a `schema`.", param="text.format",
                             code="missing_required_parameter")
    schema: Json = {"name": fmt.name, "schema": fmt.json_schema}
    if fmt.description is not None:
        schema["description"] = fmt.description
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": schema}


def _check_supported(request: ResponsesRequest) -> None:
    if request.background:
        raise InvalidRequest("Background responses are not supported by this gateway.", param="background",
                             code="unsupported_value")


def chat_body(request: ResponsesRequest, history: list[Json]) -> tuple[Json, list[Json]]:
    """The chat body to send, and the conversation it holds without `instructions` (stored for
    the next turn: the history of the previous response, then this input)."""
    _check_supported(request)
    conversation = [*history, *input_messages(request)]
    if not conversation:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    system = [{"role": "system", "content": request.instructions}] if request.instructions else []
    body: Json = {"model": request.model, "messages": [*system, *conversation]}
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    tools = _tools(request)
    if tools:
        body["tools"] = tools
    choice = request.tool_choice_of()
    if choice is not None:
        body["tool_choice"] = _tool_choice(choice)
    if request.parallel_tool_calls is not None and tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    for source, target in (("temperature", "temperature"), ("top_p", "top_p"),
                           ("max_output_tokens", "max_completion_tokens"), ("user", "user")):
        value = getattr(request, source)
        if value is not None:
            body[target] = value
    if request.text is not None and request.text.format is not None:
        response_format = _response_format(request.text.format)
        if response_format is not None:
            body["response_format"] = response_format
    if request.reasoning is not None and request.reasoning.effort is not None:
        body["reasoning_effort"] = request.reasoning.effort
    return body, conversation
