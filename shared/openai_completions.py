"""The legacy completions request (`POST /v1/completions`), validated as OpenAI does: strict
types, ranges, unknown fields kept (the body forwarded is the client's own bytes)."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shared.openai_messages import Open
from shared.openai_types import EmbeddingsInput, Penalty, Stop, StreamOptions


class CompletionsRequest(Open):
    model: str = Field(min_length=1)
    prompt: EmbeddingsInput  # a string, strings, tokens or token arrays, as OpenAI takes
    suffix: str | None = None
    max_tokens: int | None = Field(default=None, ge=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    best_of: int | None = Field(default=None, ge=0, le=20)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool | None = None
    stop: Stop | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    seed: int | None = None
    user: str | None = None
