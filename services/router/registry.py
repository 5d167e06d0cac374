"""The router's providers, built once from the config: provider name → adapter.

The ingress decides each call's route (the model's deployments, in failover order); the
router only looks up the adapter each deployment names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.router.http_client import UpstreamHttp
from services.router.providers import build_provider, parse_provider
from services.router.providers.base import Provider
from shared.config import GatewayConfig
from shared.errors import GatewayError
from shared.protocol import Route


@dataclass(frozen=True, slots=True)
class Target:
    provider: Provider[Any]
    model: str  # the model name the upstream knows


class ProviderRegistry:
    def __init__(self, config: GatewayConfig, http: UpstreamHttp) -> None:
        self._providers = {entry.name: build_provider(parse_provider(entry), http) for entry in config.providers}

    def __len__(self) -> int:
        return len(self._providers)

    def provider(self, name: str) -> Provider[Any]:
        """The adapter of one provider (a pass-through call names it)."""
        try:
            return self._providers[name]
        except KeyError:
            raise GatewayError(f"This router does not know the provider `{name}`.", status=502,
                               code="router_config_mismatch") from None

    def targets(self, route: Route) -> tuple[Target, ...]:
        try:
            return tuple(Target(self._providers[t.provider], t.model) for t in route.targets)
        except KeyError as missing:
            # the ingress and this router read different configs (a rollout under way)
            raise GatewayError(f"This router does not know the provider {missing} of model `{route.model}`.",
                               status=502, code="router_config_mismatch") from None
