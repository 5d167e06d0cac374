"""Config of an OpenAI-compatible provider: `type:` names a preset (services/router/providers/
openai/presets.py) whose defaults the entry's own fields override."""
from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from services.router.providers.base import ProviderConfig
from services.router.providers.openai.presets import PRESETS, Preset
from shared.secrets import SecretRef


class OpenAIConfig(ProviderConfig):
    type: str = "openai"
    base_url: str = ""  # the preset's when not set
    api_key: SecretRef | None = None
    timeout_s: float = 600.0  # reasoning models think for minutes before the first token
    connect_timeout_s: float = 5.0
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. OpenRouter's HTTP-Referer and X-Title
    stream_usage: bool | None = None  # the preset's when not set
    drop_fields: frozenset[str] | None = None
    drop_message_fields: frozenset[str] | None = None
    # `/v1/responses` sent to the upstream's own `/responses` (else translated to chat
    # completions); by default only for a preset that has it, at the preset's base URL
    native_responses: bool | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PRESETS:
            raise ValueError(f"not an OpenAI-compatible type (known: {', '.join(sorted(PRESETS))})")
        return value

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        preset = PRESETS.get(str(data.get("type", "openai")))
        if preset is None:
            return data  # the type's validator names the problem
        defaults = {"base_url": preset.base_url, "stream_usage": preset.stream_usage,
                    "drop_fields": preset.drop_fields, "drop_message_fields": preset.drop_message_fields}
        merged = {**defaults, **{k: v for k, v in data.items() if v is not None}}
        if merged.get("native_responses") is None:
            merged["native_responses"] = preset.native_responses and \
                str(merged.get("base_url") or "").rstrip("/") == preset.base_url
        return merged

    @model_validator(mode="after")
    def _key_for_hosted(self) -> OpenAIConfig:
        preset = self.preset
        if preset.needs_key and self.api_key is None and self.base_url.rstrip("/") == preset.base_url:
            raise ValueError(f"api_key: {self.type} at {preset.base_url} needs one (e.g. env:{self.type.upper()}_API_KEY)")
        return self

    @property
    def preset(self) -> Preset:
        return PRESETS[self.type]
