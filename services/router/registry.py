"""The model registry: gateway model names → ordered deployments on provider adapters."""
from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.router.providers import build_provider
from services.router.providers.base import Provider
from shared.config import GatewayConfig, ModelConfig


@dataclass(frozen=True)
class Target:
    provider: Provider
    model: str  # the model name the upstream knows


@dataclass(frozen=True)
class RoutedModel:
    config: ModelConfig
    targets: tuple[Target, ...]


class ModelRegistry:
    def __init__(self, config: GatewayConfig, http: httpx.AsyncClient) -> None:
        self._providers = {p.name: build_provider(p, http) for p in config.providers}
        self._models = {
            m.name: RoutedModel(m, tuple(Target(self._providers[d.provider], d.model) for d in m.deployments))
            for m in config.models
        }

    def get(self, name: str) -> RoutedModel | None:
        return self._models.get(name)
