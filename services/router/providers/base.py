"""The one interface every provider adapter implements.

An adapter turns an OpenAI-shaped request into a call to its upstream and the answer
back into OpenAI's shapes. Errors are raised as ProviderError; `retryable` tells the
router to try the model's next deployment.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from shared.openai_types import Usage


class ProviderError(Exception):
    def __init__(self, status: int, message: str, *, retryable: bool, error_type: str = "api_error",
                 code: str | None = None, param: str | None = None, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retryable = retryable
        self.error_type = error_type
        self.code = code
        self.param = param
        self.retry_after = retry_after


@dataclass
class Completion:
    """A whole answer: the OpenAI JSON body to return, and the usage read from it."""

    body: dict[str, Any]
    usage: Usage | None


@dataclass
class StreamChunk:
    """One `chat.completion.chunk`: raw JSON bytes to relay, and the parsed object."""

    raw: bytes
    parsed: dict[str, Any] = field(default_factory=dict)

    @property
    def usage(self) -> Usage | None:
        usage = self.parsed.get("usage")
        return Usage.model_validate(usage) if usage else None

    @property
    def is_usage_only(self) -> bool:
        return not self.parsed.get("choices") and bool(self.parsed.get("usage"))


class Provider(ABC):
    """An upstream, built from one provider entry of the config as `Adapter(config, http)`;
    adapters that speak HTTP share the router's one pooled client."""

    name: str

    @abstractmethod
    def __init__(self, config: Any, http: Any) -> None: ...

    @abstractmethod
    async def chat(self, body: dict[str, Any], model: str) -> Completion: ...

    @abstractmethod
    def chat_stream(self, body: dict[str, Any], model: str) -> AsyncIterator[StreamChunk]:
        """Yields chunks; raises ProviderError before the first chunk if the call fails."""

    @abstractmethod
    async def embeddings(self, body: dict[str, Any], model: str) -> Completion: ...
