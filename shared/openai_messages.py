"""The messages of an OpenAI chat request, one model per role, validated as OpenAI does:
the role picks the model, a content part's `type` picks the part, content is a string or a
list of the parts that role may send. Fields the gateway does not know pass through."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class Open(BaseModel):
    """Strict types (no "yes" for a boolean, no "1" for a number), unknown fields kept."""

    model_config = ConfigDict(extra="allow", strict=True)


_KINDS: dict[type, str] = {str: "string", list: "array", dict: "object"}


def _json_kind(value: Any) -> str:
    return _KINDS.get(type(value), "other")


def by_json_type(expected: str) -> Discriminator:
    """Picks a union's member (tagged "string", "array", "object") by the JSON type of the
    value, so a wrong type is one clear error (`invalid_type`, naming what was expected)
    instead of one error per member."""
    return Discriminator(_json_kind, custom_error_type="invalid_type", custom_error_message=expected)


PARTS = "expected one of a string or array of objects"


class PromptCacheBreakpoint(Open):
    mode: Literal["explicit"]
    ttl: Literal["30m", "12h"] | None = None


class TextPart(Open):
    type: Literal["text"]
    text: str


class ImageUrl(Open):
    url: str
    detail: Literal["auto", "low", "high", "original"] | None = None


class ImagePart(Open):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(Open):
    data: str
    format: Literal["wav", "mp3"]


class AudioPart(Open):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileRef(Open):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(Open):
    type: Literal["file"]
    file: FileRef


class RefusalPart(Open):
    type: Literal["refusal"]
    refusal: str


UserPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]

TextContent = Annotated[Annotated[str, Tag("string")] | Annotated[list[TextPart], Tag("array")], by_json_type(PARTS)]
UserContent = Annotated[Annotated[str, Tag("string")] | Annotated[list[UserPart], Tag("array")], by_json_type(PARTS)]
AssistantContent = Annotated[Annotated[str, Tag("string")] | Annotated[list[AssistantPart], Tag("array")],
                             by_json_type(PARTS)]


class FunctionCall(Open):
    name: str
    arguments: str


class CustomCall(Open):
    name: str
    input: str


class FunctionToolCall(Open):
    id: str
    type: Literal["function"]
    function: FunctionCall


class CustomToolCall(Open):
    id: str
    type: Literal["custom"]
    custom: CustomCall


ToolCall = Annotated[FunctionToolCall | CustomToolCall, Field(discriminator="type")]


class AssistantAudio(Open):
    id: str


class SystemMessage(Open):
    role: Literal["system"]
    content: TextContent
    name: str | None = None


class DeveloperMessage(Open):
    role: Literal["developer"]
    content: TextContent
    name: str | None = None


class UserMessage(Open):
    role: Literal["user"]
    content: UserContent
    name: str | None = None


class AssistantMessage(Open):
    role: Literal["assistant"]
    content: AssistantContent | None = None
    name: str | None = None
    refusal: str | None = None
    audio: AssistantAudio | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None


class ToolMessage(Open):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: str


class FunctionMessage(Open):
    role: Literal["function"]
    content: str | None
    name: str


ChatMessage = Annotated[SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage
                        | FunctionMessage, Field(discriminator="role")]
