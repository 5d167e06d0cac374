"""The one interface every provider adapter implements, and the gateway's own types it speaks.

An adapter turns the gateway's request (`ChatCall`, `EmbeddingsCall`: the client's OpenAI
body, passed through untouched, plus the model name the upstream knows) into a call to its
upstream, and the answer back into OpenAI's shapes (`Completion`, `Chunk`, `Usage`).
Failures are raised as `GatewayError` (shared/errors.py); `retryable` tells the router to
try the model's next deployment.

A provider type is a package beside this module: `config.py` (its pydantic config model,
with `type: Literal[...]`), `adapter.py` (its `Provider` subclass), and the payloads its
tests answer with. It is registered once, in `services/router/providers/__init__.py`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from services.router.http_client import UpstreamHttp, UpstreamTimeouts
from shared.errors import InvalidRequest
from shared.openai_types import Usage


class ProviderConfig(BaseModel):
    """The fields every provider entry of the YAML config has; each type adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class ChatCall:
    """A chat completion to make: the client's body as sent (`model` still the gateway's
    name; fields the gateway does not read pass through), and the upstream's model name."""

    body: dict[str, Any]
    model: str


@dataclass(frozen=True, slots=True)
class EmbeddingsCall:
    body: dict[str, Any]
    model: str


@dataclass(frozen=True, slots=True)
class ResponsesCall:
    """A Responses API call (`POST /responses`): the body as the ingress sent it (the client's,
    earlier turns of `previous_response_id` expanded into `input`; fields the gateway does
    not read pass through), and the upstream's model name."""

    body: dict[str, Any]
    model: str


@dataclass(frozen=True, slots=True)
class EndpointCall:
    """A call to one of OpenAI's other endpoints (`/completions`, `/moderations`,
    `/images/generations`, `/audio/speech`, `/audio/transcriptions`): the path under the
    provider's base URL, the client's body (`body` parsed when JSON, else None: `raw` is a
    multipart form, with its `content_type`), and the upstream's model name."""

    path: str
    body: dict[str, Any] | None
    raw: bytes
    model: str
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer: the OpenAI JSON body to return as is, and the usage read from it."""

    raw: bytes
    usage: Usage | None
    # the upstream's response headers the client gets (rate limits, processing time)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One `chat.completion.chunk`: the JSON to relay after `data: `, and what the router
    reads from it (usage when it carries some, the text generated, whether it is only usage)."""

    raw: bytes
    usage: Usage | None = None
    text: str = ""
    usage_only: bool = False
    headers: Mapping[str, str] | None = None  # on a stream's first chunk: as Completion.headers


def count_of(usage: dict[str, Any], name: str) -> int:
    """A token count from an upstream's usage object; 0 when absent or not a number."""
    value = usage.get(name)
    return value if isinstance(value, int) else 0


def usage_json(fresh_input: int, output: int, cache_read: int, cache_write: int) -> dict[str, Any]:
    """OpenAI's usage object for an upstream that counts cached input apart (Anthropic,
    Bedrock): the prompt is every input token, cache reads are `cached_tokens`."""
    prompt = fresh_input + cache_read + cache_write
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output,
            "prompt_tokens_details": {"cached_tokens": cache_read, "cache_creation_tokens": cache_write}}


@dataclass(frozen=True, slots=True)
class NativeAccess:
    """How a pass-through call (`/p/{provider}/...`) reaches this provider's own API: the
    root its native paths are appended to, the credential headers that always go (they
    win over anything the client sent), headers that go unless the client sent its own
    (`anthropic-version`), and the provider's timeouts."""

    base_url: str
    credentials: Mapping[str, str]
    timeouts: UpstreamTimeouts
    defaults: Mapping[str, str] = field(default_factory=dict)


C = TypeVar("C", bound=ProviderConfig)


def unsupported_endpoint(provider: Provider[Any], path: str) -> InvalidRequest:
    return InvalidRequest(f"The provider {provider.name} (type {provider.config.type}) has no /v1{path} endpoint; "
                          "route this model to a provider that offers it.", param="model", code="unsupported_endpoint")


class Provider(ABC, Generic[C]):
    """An upstream, built from one provider entry of the config as `Adapter(config, http)`;
    adapters that speak HTTP share the router's one pooled client."""

    config_model: ClassVar[type[ProviderConfig]]

    def __init__(self, config: C, http: UpstreamHttp) -> None:
        self.name = config.name
        self.config = config
        self.http = http

    @abstractmethod
    async def chat(self, call: ChatCall) -> Completion: ...

    @abstractmethod
    def chat_stream(self, call: ChatCall) -> AsyncGenerator[Chunk, None]:
        """Yields chunks; raises GatewayError before the first chunk if the call fails."""

    @abstractmethod
    async def embeddings(self, call: EmbeddingsCall) -> Completion: ...

    async def endpoint_call(self, call: EndpointCall) -> Completion:
        """One of OpenAI's other endpoints; a provider type that does not offer it answers 400."""
        raise unsupported_endpoint(self, call.path)

    async def endpoint_stream(self, call: EndpointCall) -> AsyncGenerator[Chunk, None]:
        """A streamed call of one of those (`/completions`); 400 (at the first chunk) where not offered."""
        raise unsupported_endpoint(self, call.path)
        yield  # an async generator, as the streams that do exist

    def serves_responses(self) -> bool:
        """Whether this upstream serves OpenAI's Responses API itself (`responses`,
        `responses_stream`); for every other the router translates to and from `chat`
        (services/router/responses/)."""
        return False

    async def responses(self, call: ResponsesCall) -> Completion:
        """A whole `response` object from the upstream's own Responses API, usage read from it."""
        raise unsupported_endpoint(self, "/responses")

    async def responses_stream(self, call: ResponsesCall) -> AsyncGenerator[Chunk, None]:
        """The upstream's typed stream events, one chunk each (its JSON, as sent); raises
        GatewayError before the first one if the call fails."""
        raise unsupported_endpoint(self, "/responses")
        yield

    async def native_access(self) -> NativeAccess:
        """Where and how pass-through calls reach this provider's native API; a provider
        type without one (or one that signs each request, as Bedrock's SigV4) refuses them."""
        raise InvalidRequest(f"The provider {self.name} (type {self.config.type}) does not take pass-through calls.",
                             param="provider", code="passthrough_unsupported")
