"""Request-reply messages between the ingress and the workers.

Stream replies are ordered NATS messages on the caller's inbox; the `Jetgate-Frame`
header says what each one is: `chunk` (body: one `chat.completion.chunk` JSON, exactly
what follows `data: ` on the SSE wire), `end` (body: StreamEnd) or `error` (body: RouteError).
"""
from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from shared.errors import ErrorBody
from shared.events import Principal
from shared.openai_types import (
    ChatCompletionRequest,
    ChatMessage,
    EmbeddingsRequest,
)


class GuardrailRequest(BaseModel):
    request_id: str
    principal: Principal
    model: str
    messages: list[ChatMessage]


class Finding(BaseModel):
    rule: str
    action: Literal["block", "redact"]
    count: int = 1


class GuardrailVerdict(BaseModel):
    verdict: Literal["allow", "block", "modify"]
    rule: str | None = None
    message: str | None = None
    findings: list[Finding] = Field(default_factory=list)
    messages: list[ChatMessage] | None = None  # set when verdict == "modify"


class ChatRouteRequest(BaseModel):
    request_id: str
    principal: Principal
    body: ChatCompletionRequest
    # the gateway's own id for this call (cancels name it): never the client's x-request-id,
    # which a client may reuse or guess
    call_id: str | None = None


class EmbeddingsRouteRequest(BaseModel):
    request_id: str
    principal: Principal
    body: EmbeddingsRequest


class RouteError(BaseModel):
    status: int
    body: ErrorBody
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. the upstream's Retry-After


class Frame(StrEnum):
    CHUNK = "chunk"
    END = "end"
    ERROR = "error"


class StreamEnd(BaseModel):
    """The last frame of a complete stream (usage, when asked for, came as the last chunk)."""


class CancelRequest(BaseModel):
    call_id: str


class UsageQuery(BaseModel):
    group_by: list[Literal["model", "key_id", "org_id", "provider", "day"]] = Field(default_factory=lambda: ["model", "key_id"])
    org_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    since: str | None = None  # ISO-8601
    until: str | None = None


class UsageRow(BaseModel):
    group: dict[str, str]
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: str  # decimal as string: never a float


class UsageReport(BaseModel):
    rows: list[UsageRow]
    error: str | None = None


class KeyRevoked(BaseModel):
    key_id: str
