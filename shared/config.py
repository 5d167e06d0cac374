"""The gateway's YAML configuration: providers, models with prices, guardrails.

Providers are named here with their type; the fields of each type are validated by the
router's provider registry (services/router/providers/<type>/config.py).
"""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.prices import TokenPrices


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ProviderEntry(BaseModel):
    """One provider of the config as every service sees it: a name and a type. The fields of
    each type are validated by the router's provider registry (services/router/providers),
    where each type's config model lives beside its adapter; `jetgate up` checks them too."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    name: str
    type: str

    def fields(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, **(self.model_extra or {})}


class Pricing(_Strict, TokenPrices):
    """A model's prices in USD: per million tokens (input, output, and optionally cached
    input read and written: shared/prices.py), per answered call, per unit."""

    # added to the tokens' price of every answered call, and per unit of what the model's
    # mode counts: an image (image), a character of the input (speech), a second of audio
    # as the upstream reports it (transcription); docs/providers.md
    per_request: Decimal = Decimal(0)
    per_unit: Decimal = Decimal(0)


class Deployment(_Strict):
    provider: str
    model: str


class ModelConfig(_Strict):
    name: str
    mode: Literal["chat", "embedding", "completion", "moderation", "image", "transcription", "speech"] = "chat"
    deployments: list[Deployment] = Field(min_length=1)
    pricing: Pricing = Pricing()
    owned_by: str = "jetgate"
    # how long a call of this model may take as a whole (None: `ingress.worker_timeout_s`),
    # and the silence allowed between two stream chunks (None: `ingress.stream_idle_timeout_s`):
    # reasoning models think for minutes before their first token
    timeout_s: float | None = Field(default=None, gt=0)
    stream_idle_timeout_s: float | None = Field(default=None, gt=0)
    # the most output tokens one call may make; a budget reserves this when the request
    # sets no max_tokens (None: JETGATE_LIMITS__DEFAULT_MAX_OUTPUT_TOKENS)
    max_output_tokens: int | None = Field(default=None, ge=1)


class RegexRule(_Strict):
    name: str
    pattern: str
    action: Literal["block", "redact"] = "block"
    replacement: str = "[REDACTED]"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from None
        return value


class PiiConfig(_Strict):
    email: Literal["redact", "block", "off"] = "redact"
    card: Literal["redact", "block", "off"] = "redact"


class GuardrailsConfig(_Strict):
    enabled: bool = True
    rules: list[RegexRule] = Field(default_factory=list)
    pii: PiiConfig = PiiConfig()


class GatewayConfig(_Strict):
    providers: list[ProviderEntry] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)
    guardrails: GuardrailsConfig = GuardrailsConfig()

    @model_validator(mode="after")
    def _references_resolve(self) -> GatewayConfig:
        names = [p.name for p in self.providers]
        if len(names) != len(set(names)):
            raise ValueError("provider names must be unique")
        models = [m.name for m in self.models]
        if len(models) != len(set(models)):
            raise ValueError("model names must be unique")
        for model in self.models:
            for dep in model.deployments:
                if dep.provider not in names:
                    raise ValueError(f"model {model.name!r} names unknown provider {dep.provider!r}")
        return self

    def model(self, name: str) -> ModelConfig | None:
        for model in self.models:
            if model.name == name:
                return model
        return None

    def provider(self, name: str) -> ProviderEntry:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)


def load_config(path: Path) -> GatewayConfig:
    data = yaml.safe_load(Path(path).read_text()) or {}
    return GatewayConfig.model_validate(data)
