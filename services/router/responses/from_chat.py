"""A chat completion → the `response` object: the skeleton echoing the request's settings,
output items from the assistant message, status from `finish_reason`, usage renamed.

| chat completions                              | Responses API                                       |
|-----------------------------------------------|-----------------------------------------------------|
| `message.content`                             | a `message` item with one `output_text` part        |
| `message.refusal`                             | a `refusal` part                                    |
| `message.tool_calls[]`                        | `function_call` items (`call_id` = the call's `id`) |
| `finish_reason` `length` / `content_filter`   | `incomplete`, `max_output_tokens` / `content_filter`|
| `prompt_tokens`, `completion_tokens`          | `input_tokens`, `output_tokens`                     |
| `prompt_tokens_details.cached_tokens`         | `input_tokens_details.cached_tokens`                |
| `prompt_tokens_details.cache_creation_tokens` | `input_tokens_details.cache_write_tokens`           |
| `completion_tokens_details.reasoning_tokens`  | `output_tokens_details.reasoning_tokens`            |
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.router.responses.objects import (
    FunctionCallOutput,
    IncompleteDetails,
    InputTokensDetails,
    ItemStatus,
    OutputItem,
    OutputMessage,
    OutputTextPart,
    OutputTokensDetails,
    RefusalOutputPart,
    ResponseObject,
    ResponseUsage,
)
from shared.errors import UpstreamError
from shared.openai_responses import ResponsesRequest

Json = dict[str, Any]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Function(_Open):
    name: str | None = None
    arguments: str | None = None


class ChatToolCall(_Open):
    index: int | None = None  # streamed deltas only
    id: str | None = None
    function: _Function = Field(default_factory=_Function)


class ChatMessageOut(_Open):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChatToolCall] | None = None


class ChatChoice(_Open):
    message: ChatMessageOut = Field(default_factory=ChatMessageOut)
    delta: ChatMessageOut = Field(default_factory=ChatMessageOut)
    finish_reason: str | None = None


class _Details(_Open):
    cached_tokens: int | None = None
    cache_creation_tokens: int | None = None  # what the gateway's Anthropic adapter reports as written
    reasoning_tokens: int | None = None


class ChatUsage(_Open):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: _Details | None = None
    completion_tokens_details: _Details | None = None

    @field_validator("prompt_tokens", "completion_tokens", "total_tokens", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        return 0 if value is None else value


class ChatAnswer(_Open):
    """A chat completion, or one chunk of a streamed one."""

    choices: list[ChatChoice] = Field(default_factory=list)
    usage: ChatUsage | None = None


def parse_answer(raw: bytes) -> ChatAnswer:
    try:
        return ChatAnswer.model_validate_json(raw)
    except ValidationError:
        raise UpstreamError("The model's answer could not be read as a chat completion.") from None


def skeleton(request: ResponsesRequest) -> ResponseObject:
    """The response before any output: the request's settings echoed, as OpenAI does."""
    echo: Json = {}
    if request.text is not None and request.text.format is not None:
        echo["text"] = {"format": request.text.format.model_dump(by_alias=True, exclude_none=True)}
    if request.reasoning is not None:
        echo["reasoning"] = {"effort": request.reasoning.effort, "summary": request.reasoning.summary}
    choice = request.tool_choice_of()
    if choice is not None:
        echo["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump(exclude_none=True)
    return ResponseObject(
        model=request.model, instructions=request.instructions, max_output_tokens=request.max_output_tokens,
        parallel_tool_calls=request.parallel_tool_calls is not False,
        previous_response_id=request.previous_response_id, store=request.stored,
        temperature=request.temperature if request.temperature is not None else 1.0,
        top_p=request.top_p if request.top_p is not None else 1.0, user=request.user,
        metadata=request.metadata or {},
        tools=[tool.model_dump(exclude_none=True) for tool in request.tools or []], **echo)


def usage_of(usage: ChatUsage | None) -> ResponseUsage:
    if usage is None:
        return ResponseUsage()
    prompt = usage.prompt_tokens_details or _Details()
    cached, written = prompt.cached_tokens or 0, prompt.cache_creation_tokens or 0
    reasoning = (usage.completion_tokens_details.reasoning_tokens if usage.completion_tokens_details else None) or 0
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=written),
        output_tokens=usage.completion_tokens, output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
        total_tokens=usage.total_tokens or usage.prompt_tokens + usage.completion_tokens)


INCOMPLETE: dict[str, Literal["max_output_tokens", "content_filter"]] = {
    "length": "max_output_tokens", "content_filter": "content_filter"}


def finish(response: ResponseObject, finish_reason: str | None, usage: ChatUsage | None) -> ResponseObject:
    """The response's final status and usage (its items are complete, or left incomplete)."""
    incomplete = INCOMPLETE.get(finish_reason or "")
    status: ItemStatus = "incomplete" if incomplete else "completed"
    for item in response.output:
        item.status = status
    return response.model_copy(update={
        "status": status, "usage": usage_of(usage),
        "incomplete_details": IncompleteDetails(reason=incomplete) if incomplete else None})


def output_items(message: ChatMessageOut) -> list[OutputItem]:
    items: list[OutputItem] = []
    parts: list[OutputTextPart | RefusalOutputPart] = []
    if message.content:
        parts.append(OutputTextPart(text=message.content))
    if message.refusal:
        parts.append(RefusalOutputPart(refusal=message.refusal))
    if parts:
        items.append(OutputMessage(content=parts))
    for call in message.tool_calls or []:
        items.append(FunctionCallOutput(call_id=call.id or "", name=call.function.name or "",
                                        arguments=call.function.arguments or ""))
    return items


def response_of(base: ResponseObject, raw: bytes) -> ResponseObject:
    answer = parse_answer(raw)
    if not answer.choices:
        raise UpstreamError("The model's answer had no choices.")
    choice = answer.choices[0]
    return finish(base.model_copy(update={"output": output_items(choice.message)}), choice.finish_reason, answer.usage)


def assistant_message(response: ResponseObject) -> Json | None:
    """The response's output as the chat message the next turn's history holds."""
    text = "".join(part.text for item in response.output if isinstance(item, OutputMessage)
                   for part in item.content if isinstance(part, OutputTextPart))
    calls = [{"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
             for item in response.output if isinstance(item, FunctionCallOutput)]
    if not text and not calls:
        return None
    message: Json = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message
