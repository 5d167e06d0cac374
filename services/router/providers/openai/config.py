"""Config of an OpenAI-compatible provider (OpenAI, Groq, xAI, vLLM, Ollama's /v1, ...)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.router.providers.base import ProviderConfig
from shared.secrets import SecretRef


class OpenAIConfig(ProviderConfig):
    type: Literal["openai"] = "openai"
    base_url: str
    api_key: SecretRef | None = None
    timeout_s: float = 600.0  # reasoning models think for minutes before the first token
    connect_timeout_s: float = 5.0
    headers: dict[str, str] = Field(default_factory=dict)
