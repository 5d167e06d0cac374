"""The moderations request (`POST /v1/moderations`), validated as OpenAI does: `input` a
string, strings, or text and image parts (omni-moderation); `model` optional (the gateway
then uses the first moderation model the key may use)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag

from shared.openai_messages import Open
from shared.openai_types import NonEmpty


class ModerationImageUrl(Open):
    url: str


class ModerationText(Open):
    type: Literal["text"]
    text: str


class ModerationImage(Open):
    type: Literal["image_url"]
    image_url: ModerationImageUrl


ModerationPart = Annotated[ModerationText | ModerationImage, Field(discriminator="type")]


def _input_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "string"
    if not isinstance(value, list):
        return None
    return "parts" if value and isinstance(value[0], dict) else "strings"


ModerationInput = Annotated[
    Annotated[str, Tag("string")]
    | Annotated[list[NonEmpty], Field(min_length=1), Tag("strings")]
    | Annotated[list[ModerationPart], Field(min_length=1), Tag("parts")],
    Discriminator(_input_kind, custom_error_type="invalid_type",
                  custom_error_message="expected a string, an array of strings or an array of content parts")]


class ModerationsRequest(Open):
    input: ModerationInput
    model: str | None = Field(default=None, min_length=1)
