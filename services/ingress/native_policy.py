"""Policy of a pass-through call (`/p/{provider}/...`), decided in the ingress: the provider
is configured (else 404), and the native model the request names (its body's `model`, or
the model in its path: Gemini's `models/{model}:…`) maps to a gateway model deployed on
that provider. A key limited to some models (`Principal.models`) may only make calls
whose model maps to one of them (403 otherwise, also when the request names no model);
a key without limits may call anything the provider serves. The route's prices are the
mapped model's: an unmapped call is charged its tokens at 0.
"""
from __future__ import annotations

from typing import Any

import orjson

from services.ingress.policy import allowed
from shared.config import GatewayConfig, ModelConfig
from shared.errors import NotFound, PermissionDenied
from shared.events import Principal
from shared.native import model_in_path
from shared.protocol import Route, Target


def native_model(body: bytes, path: str) -> str | None:
    """The upstream model a native request names, if any."""
    if body.lstrip()[:1] == b"{":
        try:
            parsed: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("model"), str) and parsed["model"]:
            return str(parsed["model"])
    return model_in_path(path)


def _deployed_on(config: GatewayConfig, provider: str, model: str) -> list[ModelConfig]:
    return [m for m in config.models
            if any(d.provider == provider and d.model.removeprefix("models/") == model.removeprefix("models/")
                   for d in m.deployments)]


def native_route(config: GatewayConfig, principal: Principal, provider: str, model: str | None) -> Route:
    """The route of a pass-through call; NotFound for an unknown provider, PermissionDenied
    for a model the key may not use."""
    if provider not in {p.name for p in config.providers}:
        raise NotFound(f"The provider `{provider}` is not configured.", param="provider", code="provider_not_found")
    mapped = [m for m in _deployed_on(config, provider, model) if allowed(principal, m.name)] if model else []
    if principal.models is not None and not mapped:
        if model is None:
            raise PermissionDenied("This API key is limited to some models; a pass-through call must name one "
                                   "(`model` in its body or its path).", param="model")
        raise PermissionDenied(f"This API key is not allowed to use the model `{model}` on provider `{provider}`.",
                               param="model")
    chosen = mapped[0] if mapped else None
    target = Target(provider=provider, model=model or "")
    if chosen is None:
        return Route(model=model or f"p/{provider}", targets=[target])
    prices = chosen.pricing
    return Route(model=chosen.name, targets=[target], input_per_million=prices.input_per_million,
                 output_per_million=prices.output_per_million, cached_input_per_million=prices.cached_input_per_million,
                 cache_write_per_million=prices.cache_write_per_million, timeout_s=chosen.timeout_s,
                 stream_idle_timeout_s=chosen.stream_idle_timeout_s)
