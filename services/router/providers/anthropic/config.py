"""Config of an Anthropic provider (the native Messages API)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.router.providers.base import ProviderConfig
from shared.secrets import SecretRef


class AnthropicConfig(ProviderConfig):
    type: Literal["anthropic"] = "anthropic"
    base_url: str = "https://api.anthropic.com"  # the API root; requests go to {base_url}/v1/messages
    api_key: SecretRef | None = None  # sent as `x-api-key`
    anthropic_version: str = "2023-06-01"
    timeout_s: float = 600.0  # extended thinking can run for minutes before the first token
    connect_timeout_s: float = 5.0
    default_max_tokens: int = Field(default=4096, ge=1)  # Anthropic requires max_tokens; used when the client sent none
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. `anthropic-beta`
