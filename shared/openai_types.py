"""The OpenAI request shapes the gateway validates (types, enums, ranges, as OpenAI does),
and the usage it reads back. Validation only: unknown fields pass, and the body forwarded
is the client's own bytes. Enums OpenAI keeps growing (reasoning_effort, service_tier,
verbosity, ...) are left open so a new value still reaches the provider."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from shared.openai_messages import ChatMessage, Open, TextContent, by_json_type

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
Penalty = Annotated[float, Field(ge=-2, le=2)]


class StreamOptions(Open):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class FunctionDefinition(Open):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(Open):
    type: Literal["function"]
    function: FunctionDefinition


class CustomToolDefinition(Open):
    name: str
    description: str | None = None
    format: dict[str, Any] | None = None


class CustomTool(Open):
    type: Literal["custom"]
    custom: CustomToolDefinition


Tool = Annotated[FunctionTool | CustomTool, Field(discriminator="type")]


class NamedFunction(Open):
    name: str


class FunctionChoice(Open):
    type: Literal["function"]
    function: NamedFunction


class CustomChoice(Open):
    type: Literal["custom"]
    custom: NamedFunction


class AllowedTools(Open):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]


class AllowedToolsChoice(Open):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoiceMode = Literal["none", "auto", "required"]
NamedToolChoice = Annotated[FunctionChoice | CustomChoice | AllowedToolsChoice, Field(discriminator="type")]
ToolChoice = Annotated[Annotated[ToolChoiceMode, Tag("string")] | Annotated[NamedToolChoice, Tag("object")],
                       by_json_type("expected one of a string ('none', 'auto', 'required') or an object")]


class JsonSchemaFormat(Open):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextFormat(Open):
    type: Literal["text"]


class JsonObjectFormat(Open):
    type: Literal["json_object"]


class JsonSchemaResponseFormat(Open):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaResponseFormat, Field(discriminator="type")]


class AudioOutput(Open):
    format: Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]
    voice: str | dict[str, Any]


class Prediction(Open):
    type: Literal["content"]
    content: TextContent


class LegacyFunction(Open):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None


Stop = Annotated[Annotated[str, Tag("string")] | Annotated[list[str], Field(max_length=4), Tag("array")],
                 by_json_type("expected one of a string or array of strings")]
FunctionCallChoice = Annotated[Annotated[Literal["none", "auto"], Tag("string")] | Annotated[NamedFunction, Tag("object")],
                               by_json_type("expected one of a string ('none', 'auto') or an object")]


class ChatCompletionRequest(Open):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    seed: int | None = None
    stop: Stop | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: AudioOutput | None = None
    prediction: Prediction | None = None
    functions: list[LegacyFunction] | None = Field(default=None, min_length=1, max_length=128)
    function_call: FunctionCallChoice | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(default=None, max_length=16)
    store: bool | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    verbosity: str | None = None
    web_search_options: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value and any(len(key) > 64 for key in value):
            raise ValueError("metadata keys are at most 64 characters")
        return value


NonEmpty = Annotated[str, Field(min_length=1)]
Tokens = Annotated[list[int], Field(min_length=1)]
Inputs = Field(min_length=1, max_length=2048)  # OpenAI: at most 2,048 inputs in one request


def _input_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "string"
    if not isinstance(value, list):
        return None
    first = value[0] if value else ""
    if isinstance(first, list):
        return "token_arrays"
    return "tokens" if type(first) is int else "strings"


EmbeddingsInput = Annotated[
    Annotated[NonEmpty, Tag("string")]
    | Annotated[list[NonEmpty], Inputs, Tag("strings")]
    | Annotated[Tokens, Tag("tokens")]
    | Annotated[list[Tokens], Inputs, Tag("token_arrays")],
    Discriminator(_input_kind, custom_error_type="invalid_type",
                  custom_error_message="expected one of a string, array of strings, array of integers "
                                       "or array of arrays of integers")]


class EmbeddingsRequest(Open):
    model: str = Field(min_length=1)
    input: EmbeddingsInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class Usage(BaseModel):
    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @field_validator("prompt_tokens", "completion_tokens", "total_tokens", mode="before")
    @classmethod
    def _null_is_zero(cls, value: Any) -> Any:
        return 0 if value is None else value  # some OpenAI-compatible servers send nulls
