"""The provider registry: one adapter class per provider `type`. No if-chains.

Every adapter is built as `Adapter(config, http)` from its own config class (shared/config.py).
"""
from __future__ import annotations

import httpx

from services.router.providers.base import Provider
from services.router.providers.mock import MockProvider
from services.router.providers.openai_compatible import OpenAICompatibleProvider
from shared.config import MockProviderConfig, OpenAIProviderConfig

PROVIDER_TYPES: dict[str, type[Provider]] = {
    "openai": OpenAICompatibleProvider,
    "mock": MockProvider,
}


def build_provider(config: OpenAIProviderConfig | MockProviderConfig, http: httpx.AsyncClient) -> Provider:
    return PROVIDER_TYPES[config.type](config, http)  # type: ignore[call-arg]
