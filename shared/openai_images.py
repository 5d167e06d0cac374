"""The image generation request (`POST /v1/images/generations`), validated as OpenAI does.
`model` is optional (the gateway then uses the first image model the key may use).
Streamed generation (gpt-image-1's partial images) is not relayed: `stream: true` is 400."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.openai_messages import Open


class ImagesRequest(Open):
    prompt: str = Field(min_length=1, max_length=32000)
    model: str | None = Field(default=None, min_length=1)
    n: int | None = Field(default=None, ge=1, le=10)
    size: str | None = None  # "1024x1024", "auto", ...: the model's own list
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    style: Literal["vivid", "natural"] | None = None
    background: Literal["transparent", "opaque", "auto"] | None = None
    moderation: Literal["low", "auto"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: int | None = Field(default=None, ge=0, le=100)
    partial_images: int | None = Field(default=None, ge=0, le=3)
    stream: bool | None = None
    user: str | None = None

    @field_validator("stream")
    @classmethod
    def _not_streamed(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("streamed image generation is not supported by the gateway; leave `stream` out")
        return value
