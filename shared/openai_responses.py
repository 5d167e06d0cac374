"""The Responses API request as the gateway reads it (`POST /v1/responses`).

Input items are told apart by `type`; a message may leave it out (OpenAI's "easy" input
message `{"role", "content"}`). A string where a list is allowed (`input`, a message's
`content`, a tool output) is read as that list's one text item, so a bad value gets one
clear error rather than one per alternative. Tools and tool choices are read loosely here
and checked by the translator, so an unsupported tool type gets a clear error naming it.
Items and content parts of other types (`item_reference`, `input_file`, a built-in tool's
call) are kept as sent (`OtherItem`, `OtherPart`): a provider that serves the Responses API
itself gets them untouched; the translator to chat completions refuses them, naming them.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictBool, Tag

from shared.errors import InvalidRequest


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class InputText(_Open):
    type: Literal["input_text"]
    text: str


class InputImage(_Open):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto"] = "auto"


class OutputText(_Open):
    type: Literal["output_text"]
    text: str


class RefusalPart(_Open):
    type: Literal["refusal"]
    refusal: str


class OtherPart(_Open):
    """A part of a type the gateway does not translate (`input_file`, `input_audio`, ...): kept
    as sent for a provider that serves the Responses API itself; refused by the translator."""

    type: str


_PART_TYPES = frozenset({"input_text", "input_image", "output_text", "refusal"})


def _part_type(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _PART_TYPES else "other"


ContentPart = Annotated[
    Annotated[InputText, Tag("input_text")] | Annotated[InputImage, Tag("input_image")]
    | Annotated[OutputText, Tag("output_text")] | Annotated[RefusalPart, Tag("refusal")]
    | Annotated[OtherPart, Tag("other")],
    Discriminator(_part_type)]


def _text_as_part(value: Any) -> Any:
    return [{"type": "input_text", "text": value}] if isinstance(value, str) else value


def _text_as_message(value: Any) -> Any:
    return [{"type": "message", "role": "user", "content": value}] if isinstance(value, str) else value


Content = Annotated[list[ContentPart], BeforeValidator(_text_as_part)]


class MessageItem(_Open):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content


class FunctionCallItem(_Open):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str


class FunctionCallOutputItem(_Open):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: Content


class ReasoningItem(_Open):
    """A reasoning model's reasoning, sent back by agents; chat models have no place for it."""

    type: Literal["reasoning"]


class OtherItem(_Open):
    """An item of a type the gateway does not translate (`item_reference`, a built-in tool's
    call, ...): kept as sent for a provider that serves the Responses API itself; refused
    by the translator."""

    type: str


_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning"})


def _item_type(value: Any) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return kind if kind in _ITEM_TYPES else "other"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")] | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")] | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_type)]


class ToolSpec(_Open):
    """A tool as the client sent it; only `function` tools can be served by chat models."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedToolChoice(_Open):
    type: Any
    name: str | None = None


class TextFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Open):
    format: TextFormat | None = None


class Reasoning(_Open):
    effort: Literal["minimal", "low", "medium", "high"] | None = None
    summary: str | None = None


class ResponsesRequest(_Open):
    model: str = Field(min_length=1)
    input: Annotated[list[InputItem], BeforeValidator(_text_as_message)] | None = None
    instructions: str | None = None
    tools: list[ToolSpec] | None = None
    tool_choice: Any = None  # "auto", "none", "required" or {"type": "function", "name"}: see `tool_choice()`
    parallel_tool_calls: StrictBool | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    stream: StrictBool | None = None
    store: StrictBool | None = None
    background: StrictBool | None = None
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None

    def tool_choice_of(self) -> str | NamedToolChoice | None:
        """The tool choice, checked: raises InvalidRequest naming `tool_choice`."""
        choice = self.tool_choice
        if choice is None or choice in ("auto", "none", "required"):
            return choice  # type: ignore[no-any-return]
        if isinstance(choice, dict):
            named = NamedToolChoice.model_validate({"type": "", **choice})
            if named.type == "function" and named.name:
                return named
            if named.type == "function":
                raise InvalidRequest("Missing required parameter: 'tool_choice.name'.", param="tool_choice.name",
                                     code="missing_required_parameter")
            raise InvalidRequest(f"A tool choice of type '{named.type}' is not supported; name a function tool.",
                                 param="tool_choice", code="unsupported_value")
        raise InvalidRequest("Invalid value for 'tool_choice': expected 'auto', 'none', 'required' or "
                             "{'type': 'function', 'name': ...}.", param="tool_choice", code="invalid_value")

    @property
    def stored(self) -> bool:
        return self.store is not False  # OpenAI keeps responses unless told not to
